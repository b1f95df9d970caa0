"""LLaVA-NeXT-Video (``LlavaNextVideoForConditionalGeneration``): LLaVA-NeXT images and videos.

Images are LLaVA-NeXT's (:mod:`.llava_next`). A video of F frames is one span: each frame's
tower grid goes through the model's ``vision_resampler`` (average / max pooling or a conv, kernel
and stride ``spatial_pool_stride``: 24 x 24 -> 12 x 12 at stride 2), giving ``frames=F`` frames
of one pooled grid in raster order; the model adds no newline or separator tokens to a video.
The selection treats time as :mod:`adsc.methods.adsc` documents: the same kept cells in every frame.
"""

from __future__ import annotations

from .llava_next import LlavaNextAdapter


class LlavaNextVideoAdapter(LlavaNextAdapter):
    name = "llava_next_video"
    model_classes = ("LlavaNextVideoForConditionalGeneration",)
    model_types = ("llava_next_video",)
    config_class = "LlavaNextVideoConfig"
    video_newline = False  # the model adds no token to a video's frames
    # training_parts are LLaVA-NeXT's: the vision_resampler (parameters only when spatial_pool_mode is
    # "conv") is outside all three and kept as loaded

    def pooled_side(self, model) -> int:
        """Tokens per side of a video frame: the crop grid after the resampler (kernel = stride, no padding)."""
        return self._side(model) // model.config.spatial_pool_stride
