"""LLaVA-1.5 (``LlavaForConditionalGeneration``): 24 x 24 = 576 tokens per 336 px image."""

from __future__ import annotations


from .base import Adapter, VisionSpan, token_runs


class LlavaAdapter(Adapter):
    name = "llava"
    model_classes = ("LlavaForConditionalGeneration",)

    def vision_token_ids(self, model):
        return (model.config.image_token_id,)

    def _grid(self, model) -> tuple[int, int]:
        vc = model.config.vision_config
        side = vc.image_size // vc.patch_size
        if model.config.vision_feature_select_strategy != "default":
            raise ValueError(
                "adsc needs vision_feature_select_strategy='default' (patch tokens only, no CLS) so that "
                "an image's tokens form a square grid"
            )
        return side, side

    def vision_spans(self, model, input_ids, inputs):
        grid = self._grid(model)
        per_image = grid[0] * grid[1]
        spans = []
        for row in input_ids:
            sample = []
            for start, length, _ in token_runs(row, self.vision_token_ids(model)):
                if length % per_image:
                    raise ValueError(
                        f"a run of {length} image tokens is not a multiple of {per_image} ({grid[0]}x{grid[1]} per "
                        "image): the processor and the model config disagree about the image size"
                    )
                sample += [VisionSpan(start + i * per_image, grid) for i in range(length // per_image)]
            spans.append(sample)
        return spans


