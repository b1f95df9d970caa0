"""Image preprocessing that training and evaluation must do identically."""

from __future__ import annotations

from PIL import Image


def pad_to_square(image: Image.Image, mean) -> Image.Image:
    """LLaVA-1.5's expand2square ("image_aspect_ratio: pad"): the image centred on a square of the
    processor's mean colour (``mean``: per-channel values in [0, 1]); a square image is returned as is."""
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new(image.mode, (side, side), tuple(int(round(255 * m)) for m in mean))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas
