"""LLaVA-NeXT / LLaVA-1.6 (``LlavaNextForConditionalGeneration``): anyres images.

Each image's run of image tokens is laid out by the model's ``pack_image_features``:

1. the base image (the whole image resized to the tower's input): ``side x side`` tokens in
   raster order (24 x 24 = 576 for a 336 px tower);
2. the high-resolution tiles (the image at the best of ``image_grid_pinpoints``, cut into tower-
   sized tiles) stitched into one feature map of ``tiles_h * side`` rows by ``tiles_w * side``
   columns, cropped back to the image's aspect ratio (``unpad_image``), each of its rows followed
   by one image-newline token.

So an image becomes two grids: the base grid, and the unpadded high-res map (the tiles are
adjacent regions of one picture there, so uniform selection spreads over the whole map rather
than per tile). The newline tokens sit inside the run but on no grid: they go into
``VisionSpan.extra``, which the engine keeps at every layer like text and never counts as vision
tokens, because they tell the model where a row ends however many of its tokens were dropped.

The layout depends on each image's original size, so ``image_sizes`` (the processor's, one
(height, width) per image in batch order) is required whenever input_ids hold image tokens.

The families built on LLaVA-NeXT (LLaVA-OneVision, LLaVA-NeXT-Video) subclass this adapter and
add their videos through :meth:`LlavaNextAdapter.layouts` with :func:`video_layout`.
"""

from __future__ import annotations

import torch

from .base import Adapter, ImageSizeNeeded, VisionSpan
from .layouts import declared_mask_pattern, spans_in_batch_order


class LlavaNextAdapter(Adapter):
    name = "llava_next"
    model_classes = ("LlavaNextForConditionalGeneration",)
    model_types = ("llava_next",)
    config_class = "LlavaNextConfig"
    training_parts = {"llm": "model.language_model", "projector": "model.multi_modal_projector", "vision": "model.vision_tower"}
    # image_newline (a parameter of model.model) is outside all three parts: training keeps it as loaded

    # videos (LLaVA-OneVision, LLaVA-NeXT-Video): None = the family takes none; else whether one
    # image-newline token follows each video's frames. Such a family also defines pooled_side.
    video_newline: bool | None = None

    def vision_token_ids(self, model):
        if self.video_newline is None:
            return (model.config.image_token_id,)
        return (model.config.image_token_id, model.config.video_token_id)

    def pooled_side(self, model) -> int:
        """Tokens per side of one video frame, after the family's pooling."""
        raise NotImplementedError

    def mask_pattern(self, model, layer_index):
        """Causal; a Mistral language model with ``sliding_window`` set keeps that window on every
        layer, in original positions (the stage mask's ``AttentionPattern(window=...)``). Windows on
        some layers only (``layer_types``, e.g. a Qwen2 with ``use_sliding_window``) are refused by name."""
        return declared_mask_pattern(self.text_config(model), layer_index)

    def _side(self, model) -> int:
        vc = model.config.vision_config
        if model.config.vision_feature_select_strategy != "default":
            raise ValueError(
                "adsc needs vision_feature_select_strategy='default' (patch tokens only, no CLS) so that "
                "each LLaVA-NeXT crop's tokens form a square grid"
            )
        return vc.image_size // vc.patch_size

    def reference_vision_tokens(self, model):
        """Grid tokens of an image filling the largest of ``image_grid_pinpoints`` (nothing unpadded):
        576 + 48 x 48 = 2880 for LLaVA-1.6 at 672 x 672; newline tokens are not counted."""
        side, crop = self._side(model), model.config.vision_config.image_size
        height, width = max(model.config.image_grid_pinpoints, key=lambda hw: hw[0] * hw[1])
        rows, cols = self._fit_map(model, height // crop * side, width // crop * side)
        return side * side + rows * cols

    def _fit_map(self, model, rows: int, cols: int) -> tuple[int, int]:
        """(rows, cols) of the tile map as the model packs it after unpadding: unchanged here;
        LLaVA-OneVision shrinks large maps (its "anyres_max_N")."""
        return rows, cols

    def tile_grid(self, model, image_size) -> tuple[int, int]:
        """(rows, cols) of the unpadded high-res map of an image of ``image_size`` = (height, width),
        computed by the model's own helpers so that the two can never disagree."""
        from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image

        side, crop = self._side(model), model.config.vision_config.image_size
        size = [int(v) for v in image_size]
        tiles_h, tiles_w = get_anyres_image_grid_shape(size, model.config.image_grid_pinpoints, crop)
        rows, cols = unpad_image(torch.empty(0, tiles_h * side, tiles_w * side), size).shape[1:]
        return self._fit_map(model, rows, cols)

    def _tile_grids(self, model, inputs) -> list[tuple[int, int]]:
        """The tile map's (rows, cols) of every image in batch order.

        From ``image_sizes`` when the forward has them; generate instead encodes the images first
        and hands the core ``mm_encoder_outputs`` (image_sizes dropped), whose per-image packed
        features show the layout themselves: the newline tokens are copies of the model's
        ``image_newline`` vector, one closing each row of the map."""
        sizes = inputs.get("image_sizes")
        if sizes is not None:
            return [self.tile_grid(model, hw) for hw in sizes.tolist()]
        encoded = (inputs.get("mm_encoder_outputs") or {}).get("image")
        if encoded is None:
            raise ValueError(
                "LLaVA-NeXT input_ids hold image tokens but no image_sizes came with them: adsc needs each image's "
                "(height, width) to find its base grid, tiles and newline tokens; pass the processor's image_sizes"
            )
        newline = self.core(model).image_newline
        return [_grid_from_features(f, newline, self._side(model) ** 2) for f in encoded.pooler_output]

    def layouts(self, model, inputs) -> list[tuple[int, str, list]]:
        """(token id, input that sizes it, per-item layouts in batch order) of each kind of vision
        run; the layouts of a kind are only asked for when input_ids hold its tokens."""
        side = self._side(model)
        kinds = [(model.config.image_token_id, "image_sizes",
                  lambda: [_layout(side, grid) for grid in self._tile_grids(model, inputs)])]
        if self.video_newline is not None:
            per_frame = self.pooled_side(model) ** 2
            kinds.append((model.config.video_token_id, "pixel_values_videos",
                          lambda: [video_layout(frames, self.pooled_side(model), self.video_newline)
                                   for frames in video_frames(inputs, per_frame, self.video_newline)]))
        return kinds

    def layout(self, model, image_size=None, frames=None):
        """An image of ``image_size``: base grid + its unpadded tile map (newlines as extra), or a video."""
        if frames is not None:
            return self.video_layout(model, frames)
        if image_size is None:
            raise ImageSizeNeeded(f"{self.name} needs an image size (height x width) for its anyres layout")
        count, build = _layout(self._side(model), self.tile_grid(model, image_size))
        return build(list(range(count)))

    def video_layout(self, model, frames: int) -> list[VisionSpan]:
        if self.video_newline is None:
            raise ValueError(f"{self.name} takes images, not videos")
        count, build = video_layout(frames, self.pooled_side(model), self.video_newline)
        return build(list(range(count)))

    def vision_spans(self, model, input_ids, inputs):
        spans = [[] for _ in input_ids]
        for token, sized_by, layouts in self.layouts(model, inputs):
            if not bool((input_ids == token).any()):
                continue
            items = layouts()
            kind = _KINDS[sized_by]
            found = spans_in_batch_order(
                input_ids, token, [n for n, _ in items], lambda item, sample, pos: items[item][1](pos),
                f"the {len(items)} {kind}(s) of {sized_by} ({_PARTS[sized_by]})",
                f"pass the input_ids and {sized_by} of one processor call", kind=kind)
            for sample, more in zip(spans, found):
                sample += more
        return [sorted(sample, key=lambda s: s.start) for sample in spans]


_KINDS = {"image_sizes": "image", "pixel_values_videos": "video"}
_PARTS = {"image_sizes": "base grid + unpadded tiles + newlines per image",
          "pixel_values_videos": "frames x pooled grid (+ newline) per video"}



SINGLE_CROP = (1, 0)  # an image packed without tiles: its base grid, then one newline (a map of one empty row)


def _layout(side: int, tiles: tuple[int, int]):
    """(token count, positions -> spans) of one image: base grid, then the tile map with its newline column."""
    rows, cols = tiles
    base = side * side

    def build(pos: list[int]) -> list[VisionSpan]:
        if tiles == SINGLE_CROP:  # LLaVA-OneVision's images of a multi-image prompt (and NeXT's unused else branch)
            return [_span(pos[:base], (side, side), extra=(pos[base],))]
        body = pos[base:]  # row r of the map: cols grid tokens, then its newline
        grid = [body[r * (cols + 1) + c] for r in range(rows) for c in range(cols)]
        newlines = tuple(body[r * (cols + 1) + cols] for r in range(rows))
        return [_span(pos[:base], (side, side)), VisionSpan(grid[0], (rows, cols), positions=tuple(grid), extra=newlines)]

    return base + rows * (cols + 1), build


def video_layout(frames: int, side: int, newline: bool):
    """(token count, positions -> spans) of one video: ``frames`` frames of a side x side pooled grid
    in raster order, then (``newline``: LLaVA-OneVision) one image-newline token after the last frame."""
    grid = frames * side * side

    def build(pos: list[int]) -> list[VisionSpan]:
        return [_span(pos[:grid], (side, side), frames=frames, extra=tuple(pos[grid:]))]

    return grid + int(newline), build


def video_frames(inputs, per_frame: int, newline: bool) -> list[int]:
    """Frames of every video in batch order: from pixel_values_videos (videos, frames, C, H, W), or
    under generate from the encoded videos (videos, frames x per_frame (+ 1 newline), d)."""
    pixels = inputs.get("pixel_values_videos")
    if pixels is not None:
        if pixels.dim() != 5:
            raise ValueError(f"pixel_values_videos of shape {tuple(pixels.shape)}: adsc expects the processor's "
                             "(videos, frames, channels, height, width)")
        return [pixels.shape[1]] * pixels.shape[0]
    encoded = (inputs.get("mm_encoder_outputs") or {}).get("video")
    if encoded is None:
        raise ValueError("input_ids hold video tokens but neither pixel_values_videos nor encoded videos came with "
                         "them: adsc needs each video's frame count; pass the processor's pixel_values_videos")
    videos, tokens = encoded.pooler_output.shape[:2]
    return [(tokens - int(newline)) // per_frame] * videos


def _grid_from_features(features: torch.Tensor, newline: torch.Tensor, base: int) -> tuple[int, int]:
    """(rows, cols) of one image's tile map read off its packed features (base grid, then rows ending in a newline)."""
    is_newline = (features[base:] == newline.to(features)).all(-1)
    ends = is_newline.nonzero().flatten()
    rows = len(ends)
    cols = (len(features) - base) // max(rows, 1) - 1
    if rows == 0 or not torch.equal(ends, torch.arange(rows, device=ends.device) * (cols + 1) + cols):
        raise ValueError(
            f"an encoded LLaVA-NeXT image of {len(features)} tokens is not a {base}-token base grid followed by rows that "
            "each end in the model's image_newline: pass pixel_values and image_sizes instead of mm_encoder_outputs"
        )
    return rows, cols


def _span(pos: list[int], grid: tuple[int, int], frames: int = 1, extra: tuple[int, ...] = ()) -> VisionSpan:
    contiguous = pos[-1] - pos[0] == len(pos) - 1
    return VisionSpan(pos[0], grid, frames=frames, positions=None if contiguous else tuple(pos), extra=extra)
