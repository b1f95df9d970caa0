"""InternVL 2.5 / 3 (``InternVLForConditionalGeneration``): dynamic 448 px tiles, 256 tokens each.

The processor cuts an image into up to ``max_patches`` 448 x 448 tiles (raster order over the
tile grid of the best aspect ratio) plus, when there is more than one tile, a thumbnail of the
whole image; it writes ``<img>``, then ``image_seq_length`` ``<IMG_CONTEXT>`` tokens per tile (and
thumbnail) back to back, then ``</img>``. No token marks where one tile ends and the next begins:
the model's ``get_image_features`` encodes every tile on its own (32 x 32 patches, pixel-shuffled
by ``downsample_ratio`` 0.5 into a 16 x 16 grid in raster order) and fills the context tokens in
order. So each run of context tokens is a whole number of tiles, and each tile -- the thumbnail
too -- is its own span with its own 16 x 16 grid: ADSC keeps a uniform grid inside every tile.
``<img>`` / ``</img>`` are ordinary text tokens outside the run. A video is one ``<img>...</img>``
run of one tile per frame ("Frame1: <img>...</img>\\nFrame2: ..."), so every frame is a span too.

The language model is whatever ``text_config`` names (Qwen2 for InternVL3, Llama / InternLM-style
for others) under ``model.language_model``; its layers form q and k the Llama way.
"""

from __future__ import annotations

from .base import Adapter, ImageSizeNeeded
from .layouts import back_to_back, declared_mask_pattern, equal_grid_spans


class InternVLAdapter(Adapter):
    name = "internvl"
    model_classes = ("InternVLForConditionalGeneration",)
    model_types = ("internvl",)
    config_class = "InternVLConfig"  # layouts by name: InternVL3's 448 px tiles of 256 tokens
    max_tiles = 12  # the released processors' max_patches (GotOcr2 crop_to_patches, min_patches 1): not in the model config
    training_parts = {"llm": "model.language_model", "projector": "model.multi_modal_projector", "vision": "model.vision_tower"}

    def vision_token_ids(self, model):
        return (model.config.image_token_id,)

    def mask_pattern(self, model, layer_index):
        return declared_mask_pattern(self.text_config(model), layer_index)

    def tile_grid(self, model) -> tuple[int, int]:
        """(rows, cols) of one tile after the pixel shuffle: 448 / 14 * 0.5 = 16 x 16 for InternVL3."""
        config = model.config
        if config.vision_feature_select_strategy != "default":
            raise ValueError(
                "adsc needs vision_feature_select_strategy='default' for InternVL (the CLS token dropped) so that a "
                "tile's tokens form the square grid the pixel shuffle expects; set it in the model config"
            )
        vision = config.vision_config
        rows, cols = (int(size // patch * config.downsample_ratio) for size, patch in zip(vision.image_size, vision.patch_size))
        if rows * cols != config.image_seq_length:
            raise ValueError(
                f"InternVL config: a {vision.image_size} tile with patch {vision.patch_size} and downsample_ratio "
                f"{config.downsample_ratio} gives {rows}x{cols} tokens, but image_seq_length is {config.image_seq_length}: "
                "fix the config so that the processor and the model agree on the tokens per tile"
            )
        return rows, cols

    def reference_vision_tokens(self, model):
        """One tile (a 448 x 448 image, which the processor does not split): 256 for InternVL3.
        A budget is per tile: larger images have more tiles, each compressed alike."""
        rows, cols = self.tile_grid(model)
        return rows * cols

    def tiles_of(self, model, image_size) -> int:
        """Tiles the processor cuts an image of ``image_size`` = (height, width) into: the tile grid of
        at most :attr:`max_tiles` tiles whose aspect ratio is closest to the image's (transformers'
        own ``get_optimal_tiled_canvas``, which the processor uses), plus the thumbnail when that
        grid has more than one tile."""
        from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas

        tile = tuple(model.config.vision_config.image_size)
        cols, rows = get_optimal_tiled_canvas(tuple(int(v) for v in image_size), tile, 1, self.max_tiles)
        return 1 if rows * cols == 1 else rows * cols + 1

    def layout(self, model, image_size=None, frames=None):
        """An image's tiles (and thumbnail), or ``frames`` video frames of one tile each (the video
        processor resizes every frame to one tile), back to back in one run as the processor writes
        them: one 16 x 16 span each, through the same grid as :meth:`vision_spans`."""
        grid = self.tile_grid(model)
        if frames is not None:
            count = frames
        elif image_size is None:
            raise ImageSizeNeeded("InternVL needs an image size (height x width): its tile count follows the aspect ratio")
        else:
            count = self.tiles_of(model, image_size)
        return back_to_back(grid, count)

    def vision_spans(self, model, input_ids, inputs):
        return equal_grid_spans(input_ids, self.vision_token_ids(model), self.tile_grid(model), "InternVL image",
                                "the processor's image_seq_length and the model config disagree about the tokens per "
                                "tile; build input_ids with the model's own processor")
