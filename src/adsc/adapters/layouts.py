"""Token layouts and attention patterns that several families share (each adapter still says which it uses)."""

from __future__ import annotations

import torch

from .base import CAUSAL, AttentionPattern, VisionSpan, token_runs


def declared_mask_pattern(text_config, layer_index: int):
    """The pattern a language model's config declares for a layer: its ``layer_types`` entry
    ("full_attention" is causal; any other kind is returned by name, which the engine refuses --
    e.g. Qwen2's ``use_sliding_window``, windows on some layers only), else, without layer types,
    a window on every layer when ``sliding_window`` is set (a Mistral: its model masks every layer
    with ``q - k < sliding_window`` in sequence positions, which the stage mask keeps in original
    positions), else causal."""
    kinds = getattr(text_config, "layer_types", None)
    if kinds:
        kind = kinds[layer_index]
        return CAUSAL if kind == "full_attention" else kind
    window = getattr(text_config, "sliding_window", None)
    return CAUSAL if window is None else AttentionPattern(window=int(window))


def back_to_back(grid: tuple[int, int], count: int) -> list[VisionSpan]:
    """``count`` spans of ``grid`` laid one after another from position 0 (a layout of tiles / sub-images)."""
    per_grid = grid[0] * grid[1]
    return [VisionSpan(k * per_grid, grid) for k in range(count)]


def equal_grid_spans(input_ids: torch.Tensor, token_ids: tuple[int, ...], grid: tuple[int, int],
                     what: str, fix: str) -> list[list[VisionSpan]]:
    """Per sample, one span of ``grid`` per ``rows * cols`` tokens of each run of ``token_ids``: the
    layout of families whose every image (or tile, or frame) has the same grid and whose adjacent
    images share a run. A run that is not a whole number of grids is refused with ``fix``."""
    per_grid = grid[0] * grid[1]
    spans = []
    for row in input_ids.tolist():  # one device read for the batch
        sample = []
        for start, length, _ in token_runs(row, token_ids):
            if length % per_grid:
                raise ValueError(
                    f"a run of {length} {what} tokens at {start} is not a multiple of {per_grid} ({grid[0]}x{grid[1]} "
                    f"per grid): {fix}"
                )
            sample += [VisionSpan(start + i * per_grid, grid) for i in range(length // per_grid)]
        spans.append(sample)
    return spans


def spans_in_batch_order(input_ids: torch.Tensor, token_id: int, counts: list[int], build, what: str,
                         fix: str, kind: str = "image") -> list[list[VisionSpan]]:
    """Per sample, the spans of images whose tokens (``token_id``) hold ``counts[i]`` tokens each,
    filled in order over the flattened batch as the models' ``masked_scatter`` fills them.
    ``build(image, sample, positions)`` -> the image's spans; ``what`` / ``fix`` word the refusals
    of a token count that does not match (``what``: e.g. "the 3 image(s) of image_sizes"); ``kind``
    names the items in them ("image", "video")."""
    positions = [row.nonzero().flatten().tolist() for row in input_ids == token_id]
    found = sum(len(p) for p in positions)
    if sum(counts) != found:
        raise ValueError(f"input_ids hold {found} {kind} tokens but {what} describe {sum(counts)}: {fix}")
    spans, image = [], 0
    for b, pos in enumerate(positions):
        sample, used = [], 0
        while used < len(pos):
            count = counts[image]
            if used + count > len(pos):
                raise ValueError(
                    f"{kind} {image} ({count} tokens) does not fit the {len(pos) - used} {kind} tokens left in sample {b}: "
                    f"each image's tokens must all lie in one sample; {fix}"
                )
            sample += build(image, b, pos[used : used + count])
            used += count
            image += 1
        spans.append(sample)
    return spans
