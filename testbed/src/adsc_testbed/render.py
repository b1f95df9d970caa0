"""Draw a scene with PIL. No anti-aliasing anywhere, so the pixels depend only on the annotation."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw

from .scene import Obj, Scene, font
from .world import BACKGROUND, COLORS, TEXT_COLORS


def render(scene: Scene) -> Image.Image:
    size = scene.spec.image_size
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        _draw_shape(draw, obj)
    for text in scene.texts:
        draw.text((text.bbox[0], text.bbox[1]), text.word, fill=TEXT_COLORS[text.color], font=font())
    return img


def png_bytes(img: Image.Image) -> bytes:
    # Fixed encoder settings: same pixels -> same bytes (the determinism tests compare bytes).
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _draw_shape(draw: ImageDraw.ImageDraw, obj: Obj) -> None:
    x0, y0, x1, y1 = obj.bbox
    side = x1 - x0
    m = max(1, round(side * 0.1))  # margin keeps neighbouring objects apart
    box = (x0 + m, y0 + m, x1 - 1 - m, y1 - 1 - m)
    fill = COLORS[obj.color]
    if obj.shape == "circle":
        draw.ellipse(box, fill=fill)
    elif obj.shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon(_polygon(obj.shape, box), fill=fill)


def _polygon(shape: str, box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    bx0, by0, bx1, by1 = box
    cx, cy, r = (bx0 + bx1) / 2, (by0 + by1) / 2, (bx1 - bx0) / 2
    if shape == "triangle":
        return [(cx, by0), (bx1, by1), (bx0, by1)]
    if shape == "diamond":
        return [(cx, by0), (bx1, cy), (cx, by1), (bx0, cy)]
    if shape == "star":
        pts = []
        for k in range(10):  # five outer and five inner vertices, first one pointing up
            rad = r if k % 2 == 0 else r * 0.45
            ang = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        return pts
    if shape == "cross":
        t = r / 3  # half the bar thickness
        return [(cx - t, by0), (cx + t, by0), (cx + t, cy - t), (bx1, cy - t), (bx1, cy + t), (cx + t, cy + t),
                (cx + t, by1), (cx - t, by1), (cx - t, cy + t), (bx0, cy + t), (bx0, cy - t), (cx - t, cy - t)]
    raise ValueError(f"unknown shape {shape!r}")
