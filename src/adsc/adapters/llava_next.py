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
"""

from __future__ import annotations

import torch

from .base import Adapter, VisionSpan
from .layouts import declared_mask_pattern, spans_in_batch_order


class LlavaNextAdapter(Adapter):
    name = "llava_next"
    model_classes = ("LlavaNextForConditionalGeneration",)
    model_types = ("llava_next",)
    training_parts = {"llm": "model.language_model", "projector": "model.multi_modal_projector", "vision": "model.vision_tower"}
    # image_newline (a parameter of model.model) is outside all three parts: training keeps it as loaded

    def vision_token_ids(self, model):
        return (model.config.image_token_id,)

    def mask_pattern(self, model, layer_index):
        """Causal, unless the language model declares sliding-window layers (a Mistral with
        ``sliding_window`` set): those the engine has no stage mask for, so compress() refuses them."""
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
        return side * side + (height // crop * side) * (width // crop * side)

    def tile_grid(self, model, image_size) -> tuple[int, int]:
        """(rows, cols) of the unpadded high-res map of an image of ``image_size`` = (height, width),
        computed by the model's own helpers so that the two can never disagree."""
        from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image

        side, crop = self._side(model), model.config.vision_config.image_size
        size = [int(v) for v in image_size]
        tiles_h, tiles_w = get_anyres_image_grid_shape(size, model.config.image_grid_pinpoints, crop)
        rows, cols = unpad_image(torch.empty(0, tiles_h * side, tiles_w * side), size).shape[1:]
        return rows, cols

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

    def vision_spans(self, model, input_ids, inputs):
        token = model.config.image_token_id
        is_image = input_ids == token
        if not bool(is_image.any()):
            return [[] for _ in input_ids]
        side = self._side(model)
        layouts = [_layout(side, grid) for grid in self._tile_grids(model, inputs)]
        return spans_in_batch_order(
            input_ids, token, [n for n, _ in layouts], lambda image, sample, pos: layouts[image][1](pos),
            f"the {len(layouts)} image(s) of image_sizes (base grid + unpadded tiles + newlines per image)",
            "pass the input_ids and image_sizes of one processor call")


def _layout(side: int, tiles: tuple[int, int]):
    """(token count, positions -> spans) of one image: base grid, then the tile map with its newline column."""
    rows, cols = tiles
    base = side * side

    def build(pos: list[int]) -> list[VisionSpan]:
        body = pos[base:]  # row r of the map: cols grid tokens, then its newline
        grid = [body[r * (cols + 1) + c] for r in range(rows) for c in range(cols)]
        newlines = tuple(body[r * (cols + 1) + cols] for r in range(rows))
        return [_span(pos[:base], (side, side)), VisionSpan(grid[0], (rows, cols), positions=tuple(grid), extra=newlines)]

    # the model always adds at least one tile (image_size_to_num_patches counts base + >= 1 tile)
    return base + rows * (cols + 1), build


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


def _span(pos: list[int], grid: tuple[int, int]) -> VisionSpan:
    contiguous = pos[-1] - pos[0] == len(pos) - 1
    return VisionSpan(pos[0], grid, positions=None if contiguous else tuple(pos))
