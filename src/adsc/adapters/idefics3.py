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
"""

from __future__ import annotations

from .base import Adapter
from .layouts import declared_mask_pattern, equal_grid_spans


class Idefics3Adapter(Adapter):
    name = "idefics3"
    model_classes = ("SmolVLMForConditionalGeneration", "Idefics3ForConditionalGeneration")
    model_types = ("smolvlm", "idefics3")
    training_parts = {"llm": "model.text_model", "projector": "model.connector", "vision": "model.vision_model"}

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

    def vision_spans(self, model, input_ids, inputs):
        return equal_grid_spans(input_ids, self.vision_token_ids(model), self.image_grid(model), "image",
                                "the processor's image_seq_len and the model config (image_size, patch_size, "
                                "scale_factor) disagree; build input_ids with the model's own processor")
