"""Qwen2-VL / Qwen2.5-VL: per-image grids from ``image_grid_thw`` after the 2x2 spatial merge;
videos from ``video_grid_thw``.

A video of ``t`` temporal patches (frames after the model's temporal patching: two input frames
each) on an ``h x w`` patch grid is one span of ``frames=t`` frames on a ``(h/2, w/2)`` grid, its
tokens frame by frame in raster order, as the model lays them out. The selection treats time as
:mod:`adsc.methods.adsc` documents (the same cells in every frame). Positions are M-RoPE's own:
the engine never renumbers them, so a kept token keeps its (t, h, w) position.
"""

from __future__ import annotations

import functools

import torch

from .base import Adapter, ImageSizeNeeded, VisionSpan, token_runs


class Qwen2VLAdapter(Adapter):
    name = "qwen2_vl"
    model_classes = ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration")
    model_types = ("qwen2_vl", "qwen2_5_vl")
    config_class = "Qwen2VLConfig"  # Qwen2.5-VL's vision grid arithmetic is the same (patch 14, 2 x 2 merge, 2 frames)
    training_parts = {"llm": "model.language_model", "projector": "model.visual.merger", "vision": "model.visual"}
    REFERENCE_TOKENS = 576  # grids follow the image size; 576 = a 672 x 672 image (48 x 48 patches, 2 x 2 merge)

    def reference_vision_tokens(self, model):
        return self.REFERENCE_TOKENS

    def vision_token_ids(self, model):
        return (model.config.image_token_id, model.config.video_token_id)

    def image_placeholder(self, processor):
        """The processor expands ``<|image_pad|>`` alone; the prompt wraps it in the vision start / end
        tokens itself, as Qwen's chat template writes an image (Qwen2-VL's processor names neither)."""
        start = getattr(processor, "vision_start_token", "<|vision_start|>")
        end = getattr(processor, "vision_end_token", "<|vision_end|>")
        return f"{start}{processor.image_token}{end}"

    def attach(self, model):
        """Check token counts before ``get_rope_index``: generate computes M-RoPE positions before
        any forward (so before the core hook), and a mismatch there is a raw shape error."""
        core = self.core(model)
        original = core.get_rope_index

        @functools.wraps(original)
        def checked(input_ids, *args, **kwargs):
            check_token_counts(model, input_ids, kwargs.get("image_grid_thw"), kwargs.get("video_grid_thw"))
            return original(input_ids, *args, **kwargs)

        core.get_rope_index = checked  # an instance attribute: removing it restores the class method
        return lambda: core.__dict__.pop("get_rope_index", None)

    def item_grid(self, config, modality, item):
        """From the item's ``image_grid_thw`` / ``video_grid_thw`` (one row), after the spatial merge."""
        key = f"{modality}_grid_thw"
        if key not in item:
            raise ValueError(f"a {modality} item without its {key}: pass the processor's outputs for it")
        thw = torch.as_tensor(item[key]).reshape(-1, 3)
        if len(thw) != 1:
            raise ValueError(f"one {modality} item has one row of {key}, got {thw.tolist()}")
        return next(frame_grids(thw, config.vision_config.spatial_merge_size))

    def layout(self, model, image_size=None, frames=None):
        """An image (or ``frames`` input frames) resized as the processor resizes it (``smart_resize``:
        sides to multiples of patch x merge, pixels within its default bounds), then patched: a video
        of N frames has ceil(N / temporal_patch_size) frames on the grid."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        if image_size is None:
            raise ImageSizeNeeded("Qwen2-VL needs an image (or frame) size, height x width: its grid follows the size")
        vc = model.config.vision_config
        height, width = smart_resize(*image_size, factor=vc.patch_size * vc.spatial_merge_size)
        t = 1 if frames is None else -(-frames // vc.temporal_patch_size)
        grid_thw = torch.tensor([[t, height // vc.patch_size, width // vc.patch_size]])
        (t, rows, cols), = frame_grids(grid_thw, vc.spatial_merge_size)
        return [VisionSpan(0, (rows, cols), frames=t)]

    def vision_spans(self, model, input_ids, inputs):
        positions = inputs.get("position_ids")
        if inputs.get("image_grid_thw") is None and inputs.get("video_grid_thw") is None and positions is not None:
            # generate() hands over pre-encoded images and M-RoPE positions instead of the grids
            return _spans_from_mrope(input_ids, positions, self.vision_token_ids(model))
        merge = model.config.vision_config.spatial_merge_size
        kinds = (("image", model.config.image_token_id), ("video", model.config.video_token_id))
        grids = {token: list(frame_grids(inputs.get(f"{kind}_grid_thw"), merge)) for kind, token in kinds}
        id_rows = input_ids.tolist()  # one device read for the batch (the grids: one each, above)
        for kind, token in kinds:  # counts checked on the host, from what was read anyway
            _check_counts(kind, sum(row.count(token) for row in id_rows), sum(t * h * w for t, h, w in grids[token]),
                          inputs.get(f"{kind}_grid_thw"), merge)
        used = {k: 0 for k in grids}
        spans = []
        for row in id_rows:
            sample = []
            for start, length, tid in token_runs(row, self.vision_token_ids(model)):
                offset = 0
                while offset < length:  # adjacent images of the same kind form one run
                    if used[tid] >= len(grids[tid]):
                        kind = "image_grid_thw" if tid == model.config.image_token_id else "video_grid_thw"
                        raise ValueError(f"more vision-token runs than entries in {kind}: pass the processor's {kind}")
                    frames, rows, cols = grids[tid][used[tid]]
                    used[tid] += 1
                    sample.append(VisionSpan(start + offset, (rows, cols), frames=frames))
                    offset += frames * rows * cols
                if offset != length:
                    raise ValueError(
                        f"vision tokens at {start}..{start + length} do not match the grids in image_grid_thw "
                        f"({offset} tokens expected): token-count mismatch between input_ids and the image grids"
                    )
            spans.append(sample)
        return spans


def check_token_counts(model, input_ids, image_grid_thw, video_grid_thw) -> None:
    """ValueError naming both counts when input_ids and the grids disagree about how many vision tokens there are."""
    if input_ids is None:
        return
    merge = model.config.vision_config.spatial_merge_size
    kinds = (("image", model.config.image_token_id, image_grid_thw), ("video", model.config.video_token_id, video_grid_thw))
    in_ids = [(input_ids == token).sum() for _, token, _ in kinds]
    in_grids = [g.prod(-1).sum().to(input_ids.device) // (merge * merge) for _, _, g in kinds if g is not None]
    counts = torch.stack(in_ids + in_grids).tolist()  # one device read for all of them
    grid_counts = iter(counts[len(kinds):])
    for (kind, _, grid_thw), count in zip(kinds, counts):
        _check_counts(kind, count, 0 if grid_thw is None else next(grid_counts), grid_thw, merge)


def _check_counts(kind: str, in_ids: int, in_grids: int, grid_thw, merge: int) -> None:
    if in_ids != in_grids and (grid_thw is not None or in_ids):
        raise ValueError(
            f"input_ids hold {in_ids} {kind} tokens but {kind}_grid_thw describes {in_grids} "
            f"({kind}_grid_thw={None if grid_thw is None else grid_thw.tolist()}, {merge}x{merge} merge): "
            f"pass the input_ids and {kind}_grid_thw of one processor call (token-count mismatch)"
        )


def frame_grids(grid_thw, merge: int):
    """(frames, rows, cols) per image or video, after the merge x merge token merge."""
    if grid_thw is None:
        return
    for t, h, w in grid_thw.tolist():
        yield (t, h // merge, w // merge)


def _spans_from_mrope(input_ids, position_ids, token_ids):
    """Grids read off 3-D M-RoPE positions: a run's distinct h are rows, distinct w are columns, and
    the run holds length / (rows * cols) frames (counted, not read off t: Qwen2.5-VL scales t by
    the video's frame rate, so two frames may share one t position)."""
    thw = position_ids[-3:]  # (3, B, L); a leading text row (4, B, L) is skipped
    spans = []
    for b, row in enumerate(input_ids.tolist()):
        sample = []
        for start, length, _ in token_runs(row, token_ids):
            t, h, w = (thw[i, b, start : start + length] for i in range(3))
            if length > 1 and torch.equal(t, h) and torch.equal(h, w) and bool((t.diff() == 1).all()):
                raise ValueError(
                    f"the vision tokens at {start}..{start + length} have text (1-D) positions: Qwen2-VL's generate "
                    "computes M-RoPE positions only with mm_token_type_ids; pass the processor's mm_token_type_ids "
                    "(returned next to input_ids) to generate"
                )
            rows, cols = len(set(h.tolist())), len(set(w.tolist()))
            frames = length // (rows * cols)
            if frames * rows * cols != length:
                raise ValueError(
                    f"the M-RoPE positions of the vision tokens at {start}..{start + length} do not form a grid: "
                    "pass the processor's mm_token_type_ids and image_grid_thw / video_grid_thw unchanged"
                )
            sample.append(VisionSpan(start, (rows, cols), frames=frames))
        spans.append(sample)
    return spans
