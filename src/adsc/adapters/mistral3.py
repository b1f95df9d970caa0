"""Mistral 3 (``Mistral3ForConditionalGeneration``: Mistral Small 3.1 / 3.2): Pixtral tower + patch merger.

An image keeps its own size (a multiple of ``patch_size * spatial_merge_size`` = 28 px, the
processor's ``image_sizes``). The tower makes one patch per 14 px; the projector's patch merger
folds each 2 x 2 block into one token (``unfold`` with stride 2: raster order over the merged
``rows x cols`` grid). The processor writes, per image, ``rows`` rows of ``cols`` ``[IMG]`` tokens,
each row followed by ``[IMG_BREAK]`` and the last by ``[IMG_END]`` instead. The model fills only
the ``[IMG]`` tokens (in order over the flattened batch); break and end tokens are ordinary
embeddings. So an image is one span: its ``rows x cols`` grid with gapped ``positions`` (every
``cols + 1``), the break / end tokens its ``extra`` -- kept at every layer like text, because they
tell the model where a row ends however many of its tokens were dropped, and never counted.

Mistral 3 models whose language model is a ``ministral3`` (Ministral 3) scale each query by a
function of its position id inside attention; the engine's stage layers get the kept tokens'
rotary embeddings but no position ids, so compress() refuses their pruned layers.
"""

from __future__ import annotations

from .base import Adapter, ImageSizeNeeded, VisionSpan
from .layouts import declared_mask_pattern, spans_in_batch_order

POSITION_SCALED = "position-scaled queries (ministral3's llama_4_scaling_beta, read from position_ids)"


class Mistral3Adapter(Adapter):
    name = "mistral3"
    model_classes = ("Mistral3ForConditionalGeneration",)
    model_types = ("mistral3",)
    config_class = "Mistral3Config"  # layouts by name: Mistral Small 3.1's 1540 px Pixtral tower, 28 px per token
    training_parts = {"llm": "model.language_model", "projector": "model.multi_modal_projector", "vision": "model.vision_tower"}

    def vision_token_ids(self, model):
        return (model.config.image_token_id,)

    def mask_pattern(self, model, layer_index):
        text = self.text_config(model)
        if text.model_type == "ministral3":
            return POSITION_SCALED
        return declared_mask_pattern(text, layer_index)

    def _token_px(self, model) -> int:
        return model.config.vision_config.patch_size * model.config.spatial_merge_size

    def grid_of(self, model, image_size) -> tuple[int, int]:
        """(rows, cols) of an image of ``image_size`` = (height, width) as the processor resized it."""
        px = self._token_px(model)
        return int(image_size[0]) // px, int(image_size[1]) // px

    def resized_grid(self, model, image_size) -> tuple[int, int]:
        """(rows, cols) of an *original* image of ``image_size`` as the Pixtral processor sizes it: scaled
        down (floor, aspect kept) to fit a square of the tower's ``image_size`` -- the released processors'
        ``longest_edge`` (1540 for Mistral Small 3.1) -- then each side rounded *up* to whole 28 px tokens;
        an image already inside the square is only rounded up."""
        px, longest = self._token_px(model), model.config.vision_config.image_size
        height, width = (int(v) for v in image_size)
        scale = max(height / longest, width / longest)
        if scale > 1:
            height, width = int(height / scale), int(width / scale)
        return -(-height // px), -(-width // px)

    def layout(self, model, image_size=None, frames=None):
        """One image's span: ``rows`` rows of ``cols`` [IMG] tokens, each row closed by [IMG_BREAK] and the
        last by [IMG_END] (the span's ``extra``), read back by the same :func:`_image_span` as
        :meth:`vision_spans`. Mistral 3 takes no video."""
        if frames is not None:
            raise ValueError("Mistral 3 takes images only, no video: leave out --video-frames")
        if image_size is None:
            raise ImageSizeNeeded("Mistral 3 needs an image size (height x width): its grid follows the image")
        return [self.grid_span(*self.resized_grid(model, image_size))]

    def grid_span(self, rows: int, cols: int) -> VisionSpan:
        """The span of a ``rows x cols`` image from position 0, as the processor writes it (a serving
        engine that knows the resized image's grid lays it out with this)."""
        positions = [r * (cols + 1) + c for r in range(rows) for c in range(cols)]
        return _image_span(positions, rows * (cols + 1))

    def reference_vision_tokens(self, model):
        """An image of the tower's largest size: (1540 / 28)^2 = 55 x 55 = 3025 for Mistral Small 3.1
        (break / end tokens not counted)."""
        side = model.config.vision_config.image_size // self._token_px(model)
        return side * side

    def _token_counts(self, model, inputs) -> tuple[list[int], list[tuple[int, int]] | None]:
        """Grid tokens per image in batch order, and the grids when ``image_sizes`` came with the forward.

        generate encodes the images first and hands the core ``mm_encoder_outputs`` (image_sizes
        dropped): there each image's feature count is known and its rows are read off input_ids."""
        sizes = inputs.get("image_sizes")
        if sizes is not None:
            grids = [self.grid_of(model, hw) for hw in sizes.tolist()]
            return [r * c for r, c in grids], grids
        encoded = (inputs.get("mm_encoder_outputs") or {}).get("image")
        if encoded is None:
            raise ValueError(
                "Mistral 3 input_ids hold [IMG] tokens but no image_sizes came with them: adsc needs each image's "
                "(height, width) to find its grid of rows and columns; pass the processor's image_sizes"
            )
        return [len(f) for f in encoded.pooler_output], None

    def vision_spans(self, model, input_ids, inputs):
        token = model.config.image_token_id
        if not bool((input_ids == token).any()):
            return [[] for _ in input_ids]
        counts, grids = self._token_counts(model, inputs)

        def build(image, sample, pos):
            span = _image_span(pos, input_ids.shape[1])
            if grids is not None and span.grid != grids[image]:
                raise ValueError(
                    f"image {image} of sample {sample}: image_sizes give a {grids[image][0]}x{grids[image][1]} grid but "
                    f"its [IMG] tokens form {span.grid[0]} rows of {span.grid[1]}: pass the processor's image_sizes"
                )
            return [span]

        return spans_in_batch_order(input_ids, token, counts, build, f"the {len(counts)} image(s) of image_sizes",
                                    "pass the input_ids and image_sizes of one processor call")


def _image_span(pos: list[int], length: int) -> VisionSpan:
    """One image's span from the positions of its [IMG] tokens: rows are the maximal runs, each
    followed by one separator ([IMG_BREAK], or [IMG_END] after the last), as the processor writes them."""
    ends = [i for i in range(len(pos)) if i + 1 == len(pos) or pos[i + 1] != pos[i] + 1]
    cols = ends[0] + 1
    rows = len(ends)
    gaps_ok = all(pos[e + 1] == pos[e] + 2 for e in ends[:-1])
    if rows * cols != len(pos) or ends != [r * cols + cols - 1 for r in range(rows)] or not gaps_ok or pos[-1] + 1 >= length:
        raise ValueError(
            f"the {len(pos)} [IMG] tokens from position {pos[0]} are not rows of equal length each followed by one "
            "[IMG_BREAK] / [IMG_END] token: build input_ids with the Mistral 3 (Pixtral) processor"
        )
    separators = tuple(pos[e] + 1 for e in ends)
    return VisionSpan(pos[0], (rows, cols), positions=tuple(pos), extra=separators)
