"""LLaVA-1.5 (``LlavaForConditionalGeneration``): 24 x 24 = 576 tokens per 336 px image."""

from __future__ import annotations

from .base import Adapter, VisionSpan
from .layouts import equal_grid_spans


class LlavaAdapter(Adapter):
    name = "llava"
    model_classes = ("LlavaForConditionalGeneration",)
    model_types = ("llava",)
    config_class = "LlavaConfig"
    fixed_grid = True  # every image has the tower's one grid
    training_parts = {"llm": "model.language_model", "projector": "model.multi_modal_projector", "vision": "model.vision_tower"}
    train_template = "vicuna_v1"  # LLaVA-1.5's conversation format
    pad_to_square = True  # LLaVA-1.5 pads with the processor's mean colour ("image_aspect_ratio: pad")

    def vision_token_ids(self, model):
        return (model.config.image_token_id,)

    def _grid(self, model) -> tuple[int, int]:
        return self.item_grid(model.config, "image", {})[1:]

    def item_grid(self, config, modality, item):
        """The tower's one grid: every image is resized to it (``item`` is not read)."""
        if modality != "image":
            raise ValueError(f"LLaVA takes images, not {modality}")
        vc = config.vision_config
        side = vc.image_size // vc.patch_size
        if config.vision_feature_select_strategy != "default":
            raise ValueError(
                "adsc needs vision_feature_select_strategy='default' (patch tokens only, no CLS) so that "
                "an image's tokens form a square grid"
            )
        return 1, side, side

    def reference_vision_tokens(self, model):
        rows, cols = self._grid(model)  # every image has the tower's one grid: 24 x 24 = 576 for LLaVA-1.5
        return rows * cols

    def layout(self, model, image_size=None, frames=None):
        """One image, whatever its size (the processor resizes it to the tower's input)."""
        if frames is not None:
            raise ValueError("LLaVA-1.5 takes images, not videos")
        return [VisionSpan(0, self._grid(model))]

    def vision_spans(self, model, input_ids, inputs):
        return equal_grid_spans(input_ids, self.vision_token_ids(model), self._grid(model), "image",
                                "the processor and the model config disagree about the image size")
