"""LLaVA-OneVision (``LlavaOnevisionForConditionalGeneration``): anyres-max images and videos.

Images are packed as LLaVA-NeXT packs them (:mod:`.llava_next`: a base grid, then the unpadded
tile map with one newline token per row), with two differences the adapter follows:

- "anyres_max_N" (``config.vision_aspect_ratio``, N = 9 released): a tile map of more than about
  N base grids is shrunk (bilinear) by the model before its newlines are added, so the map's
  grid is the shrunk one (:meth:`LlavaOnevisionAdapter._fit_map`, the model's own arithmetic);
- in a prompt with several images (``batch_num_images`` > 1 for that sample) each image is only
  its base grid followed by one newline token (no tiles).

A video of F frames is one span: each frame's tower grid pooled 2 x 2 (bilinear, ceil: 27 x 27
-> 14 x 14 at 384 px) gives ``frames=F`` frames of one grid in raster order, and the single
newline token after the last frame is ``extra`` (kept like text, never counted). The selection
treats time as :mod:`adsc.methods.adsc` documents: the same kept cells in every frame.
"""

from __future__ import annotations

import math

from .llava_next import SINGLE_CROP, LlavaNextAdapter

CLS_TOWERS = ("clip_vision_model",)  # towers whose output starts with a class token ("default" drops it)


class LlavaOnevisionAdapter(LlavaNextAdapter):
    name = "llava_onevision"
    model_classes = ("LlavaOnevisionForConditionalGeneration",)
    model_types = ("llava_onevision",)
    config_class = "LlavaOnevisionConfig"
    video_newline = True  # one image-newline token after each video's last frame

    def _side(self, model) -> int:
        """Tokens per side of one crop's grid: the tower's patch grid, once the strategy has removed a
        class token (CLIP, "default") or kept a tower without one whole (SigLIP, "full")."""
        vc = model.config.vision_config
        strategy = model.config.vision_feature_select_strategy
        wanted = "default" if vc.model_type in CLS_TOWERS else "full"
        if strategy != wanted:
            raise ValueError(
                f"adsc needs vision_feature_select_strategy={wanted!r} for a {vc.model_type} tower (patch tokens only) "
                f"so that each LLaVA-OneVision crop's tokens form a square grid; the config says {strategy!r}"
            )
        return vc.image_size // vc.patch_size

    def _fit_map(self, model, rows, cols):
        """The "anyres_max_N" shrink of ``pack_image_features``: a map over 1.1 x sqrt(N) base grids
        per side is resized to (rows // ratio, cols // ratio)."""
        spec = model.config.vision_aspect_ratio
        if not spec.startswith("anyres_max_") or not spec.removeprefix("anyres_max_").isdigit():
            raise ValueError(f"adsc reads LLaVA-OneVision's vision_aspect_ratio as 'anyres_max_<N>', got {spec!r}")
        side = self._side(model)
        ratio = math.sqrt(rows * cols / (int(spec.removeprefix("anyres_max_")) * side**2))
        if ratio > 1.1:
            return int(rows // ratio), int(cols // ratio)
        return rows, cols

    def _tile_grids(self, model, inputs):
        """As LLaVA-NeXT's, except that the images of a sample with several get no tiles (the model's
        ``batch_num_images`` rule); generate reads that off the packed features as well."""
        counts = inputs.get("batch_num_images")
        if counts is None or inputs.get("image_sizes") is None:
            return super()._tile_grids(model, inputs)
        tiled = [n == 1 for n in counts.tolist() for _ in range(n)]
        sizes = inputs["image_sizes"].tolist()
        if len(tiled) != len(sizes):
            raise ValueError(
                f"batch_num_images counts {len(tiled)} images but image_sizes has {len(sizes)}: "
                "pass the batch_num_images and image_sizes of one processor call"
            )
        return [self.tile_grid(model, hw) if tile else SINGLE_CROP for hw, tile in zip(sizes, tiled)]

    def pooled_side(self, model) -> int:
        """Tokens per side of a video frame: the crop grid after the model's 2 x 2 bilinear pooling (ceil)."""
        return math.ceil(self._side(model) / 2)


