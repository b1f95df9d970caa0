"""SmolVLM and Idefics3 (``SmolVLMForConditionalGeneration``, ``Idefics3ForConditionalGeneration``).

The processor splits a large image into ``rows x cols`` sub-images of the tower's size plus one
downscaled global image, and writes per sub-image ``<fake_token_around_image><row_i_col_j>``
followed by ``image_seq_len`` ``<image>`` tokens (a newline after each row of sub-images), then
``<fake_token_around_image><global-img>`` + the global image's tokens + ``<fake_token_around_image>``;
a small image is only the global part, and a video frame is one such image after its timestamp
text. The model encodes every (sub-)image on its own and its connector pixel-shuffles the
``side x side`` patch grid by ``scale_factor`` into a ``(side / s) x (side / s)`` grid in raster
order (SmolVLM-256M: 512 / 16 / 4 = 8 x 8 = 64; Idefics3-8B: 364 / 14 / 2 = 13 x 13 = 169), then
fills the ``<image>`` tokens in order. So every run of image tokens is one (sub-)image, its own
span with its own grid; the fake / row-column / global tokens are text between the runs (kept,
never counted).

The language model is ``model.model.text_model`` (not ``language_model``).

Layouts (``adsc schedule --layout smolvlm:HxW`` / ``idefics3:HxW``) follow the processor's
splitting with the released processors' sizes, which the model config does not hold: the image's
longest edge scaled to ``4 x`` the tower's size (SmolVLM-256M: 2048 px, Idefics3-8B: 1456 px), the
sides rounded up to whole sub-images, then ``rows x cols`` sub-images + the global image.
"""

from __future__ import annotations

import math

from .base import Adapter, ImageSizeNeeded
from .layouts import back_to_back, declared_mask_pattern, equal_grid_spans


class Idefics3Adapter(Adapter):
    name = "idefics3"
    model_classes = ("SmolVLMForConditionalGeneration", "Idefics3ForConditionalGeneration")
    model_types = ("smolvlm", "idefics3")
    training_parts = {"llm": "model.text_model", "projector": "model.connector", "vision": "model.vision_model"}
    images_per_prompt = True  # SmolVLMProcessor reads a flat image list as one prompt's images (Idefics3's takes both)
    resize_factor = 4  # the released processors' size["longest_edge"] / max_image_size["longest_edge"]

    def layout_configs(self):
        """The two released shapes (the config classes' defaults are neither): SmolVLM-256M / 500M
        (512 px tower, patch 16, scale 4: 64 tokens per sub-image) and Idefics3-8B (364 px, patch 14,
        scale 2: 169)."""
        import transformers

        def config(cls, image_size, patch, scale):
            return lambda: getattr(transformers, cls)(vision_config={"image_size": image_size, "patch_size": patch},
                                                      scale_factor=scale)

        return {"smolvlm": config("SmolVLMConfig", 512, 16, 4), "idefics3": config("Idefics3Config", 364, 14, 2)}

    def decoder_layers(self, model):
        return model.model.text_model.layers

    def vision_token_ids(self, model):
        return (model.config.image_token_id,)

    def mask_pattern(self, model, layer_index):
        return declared_mask_pattern(self.text_config(model), layer_index)

    def image_grid(self, model) -> tuple[int, int]:
        """(rows, cols) of one (sub-)image after the connector's pixel shuffle."""
        vision, scale = model.config.vision_config, model.config.scale_factor
        patches = vision.image_size // vision.patch_size
        if patches % scale:
            raise ValueError(
                f"{type(model).__name__} config: {patches} x {patches} patches per image do not divide by scale_factor "
                f"{scale}; fix vision_config.image_size / patch_size or scale_factor"
            )
        return patches // scale, patches // scale

    def reference_vision_tokens(self, model):
        """One (sub-)image: 64 for SmolVLM-256M / 500M, 169 for Idefics3-8B. A budget is per sub-image:
        a split image has rows x cols + 1 of them, each compressed alike."""
        rows, cols = self.image_grid(model)
        return rows * cols

    def split_of(self, model, image_size) -> tuple[int, int]:
        """(rows, cols) of sub-images the processor splits an image of ``image_size`` into ((0, 0): the
        global image only). As the processor: the longest edge scaled to ``resize_factor`` tower sizes
        (the other side truncated, then made even), both sides rounded up to whole tower sizes (the
        shorter one recomputed from the aspect ratio first), and split when either side exceeds one."""
        tile = model.config.vision_config.image_size
        height, width = (int(v) for v in image_size)
        aspect = width / height
        longest = self.resize_factor * tile
        if width >= height:
            width, height = longest, _even(int(longest / aspect))
        else:
            height, width = longest, _even(int(longest * aspect))
        aspect = width / height
        if width >= height:
            width = math.ceil(width / tile) * tile
            height = math.ceil(int(width / aspect) / tile) * tile
        else:
            height = math.ceil(height / tile) * tile
            width = math.ceil(int(height * aspect) / tile) * tile
        if height > tile or width > tile:
            return height // tile, width // tile
        return 0, 0

    def layout(self, model, image_size=None, frames=None):
        """An image's sub-images in raster order, then its global image (alone when the image is not
        split); a SmolVLM video of ``frames`` frames, one unsplit image each. One span per run, the
        runs back to back (the marker text the processor writes between them is not part of the
        layout), each on the same grid :meth:`vision_spans` uses."""
        grid = self.image_grid(model)
        if frames is not None:
            if model.config.model_type != "smolvlm":
                raise ValueError("Idefics3 takes images only, no video (SmolVLM does): leave out --video-frames")
            count = frames
        elif image_size is None:
            raise ImageSizeNeeded(f"{model.config.model_type} needs an image size (height x width): its split follows the image")
        else:
            rows, cols = self.split_of(model, image_size)
            count = rows * cols + 1
        return back_to_back(grid, count)

    def vision_spans(self, model, input_ids, inputs):
        return equal_grid_spans(input_ids, self.vision_token_ids(model), self.image_grid(model), "image",
                                "the processor's image_seq_len and the model config (image_size, patch_size, "
                                "scale_factor) disagree; build input_ids with the model's own processor")


def _even(side: int) -> int:
    return side + side % 2
