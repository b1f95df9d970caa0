"""Qwen2-VL / Qwen2.5-VL: per-image grids from ``image_grid_thw`` after the 2x2 spatial merge."""

from __future__ import annotations

from .base import Adapter, VisionSpan, token_runs


class Qwen2VLAdapter(Adapter):
    name = "qwen2_vl"
    model_classes = ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration")

    def vision_token_ids(self, model):
        return (model.config.image_token_id, model.config.video_token_id)

    def vision_spans(self, model, input_ids, inputs):
        positions = inputs.get("position_ids")
        if inputs.get("image_grid_thw") is None and inputs.get("video_grid_thw") is None and positions is not None:
            # generate() hands over pre-encoded images and M-RoPE positions instead of the grids
            return _spans_from_mrope(input_ids, positions, self.vision_token_ids(model))
        merge = model.config.vision_config.spatial_merge_size
        grids = {
            model.config.image_token_id: list(_grids(inputs.get("image_grid_thw"), merge)),
            model.config.video_token_id: list(_grids(inputs.get("video_grid_thw"), merge)),
        }
        used = {k: 0 for k in grids}
        spans = []
        for row in input_ids:
            sample = []
            for start, length, tid in token_runs(row, self.vision_token_ids(model)):
                offset = 0
                while offset < length:  # adjacent images of the same kind form one run
                    if used[tid] >= len(grids[tid]):
                        kind = "image_grid_thw" if tid == model.config.image_token_id else "video_grid_thw"
                        raise ValueError(f"more vision-token runs than entries in {kind}: pass the processor's {kind}")
                    grid = grids[tid][used[tid]]
                    used[tid] += 1
                    sample.append(VisionSpan(start + offset, grid))
                    offset += grid[0] * grid[1]
                if offset != length:
                    raise ValueError(
                        f"vision tokens at {start}..{start + length} do not match the grids in image_grid_thw "
                        f"({offset} tokens expected): token-count mismatch between input_ids and the image grids"
                    )
            spans.append(sample)
        return spans


def _grids(grid_thw, merge: int):
    """(rows, cols) per image: frames stacked as rows, after the merge x merge token merge."""
    if grid_thw is None:
        return
    for t, h, w in grid_thw.tolist():
        yield (t * h // merge, w // merge)


def _spans_from_mrope(input_ids, position_ids, token_ids):
    """Grids read off 3-D M-RoPE positions: a run's distinct (t, h) pairs are rows, distinct w are columns."""
    thw = position_ids[-3:]  # (3, B, L); a leading text row (4, B, L) is skipped
    spans = []
    for b, row in enumerate(input_ids):
        sample = []
        for start, length, _ in token_runs(row, token_ids):
            t, h, w = (thw[i, b, start : start + length] for i in range(3))
            rows = len(set(zip(t.tolist(), h.tolist())))
            cols = len(set(w.tolist()))
            if rows * cols != length:
                raise ValueError(f"vision tokens at {start}..{start + length} do not form a grid; pass image_grid_thw")
            sample.append(VisionSpan(start, (rows, cols)))
        spans.append(sample)
    return spans
