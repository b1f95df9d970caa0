"""Helpers shared by the baseline selectors: slot layouts and per-image quotas."""

from __future__ import annotations

import math

import torch

from ..engine.state import SequenceState, StageTable


def slot_view(seq: SequenceState, previous: StageTable | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(orig, valid), each (B, T_prev): original index and realness of the previous stage's slots."""
    if previous is None:
        orig = torch.arange(seq.length, device=seq.input_valid.device).expand(seq.batch, -1)
        return orig, seq.input_valid
    return previous.orig, previous.valid


def to_original(values: torch.Tensor, orig: torch.Tensor, length: int, fill: float) -> torch.Tensor:
    """Slot-layout values (B, T_prev) placed at original indices (B, T); absent ones get ``fill``."""
    out = values.new_full((values.shape[0], length), fill)
    return out.scatter(1, orig.to(values.device), values)


def image_count(keep_ref: int, n_ref: int, n_image: int) -> int:
    """An image's share of a count given for the reference image (Qwen2-VL grids differ)."""
    if n_image == n_ref:
        return keep_ref
    count = int(math.floor(keep_ref * n_image / n_ref + 1e-9))
    return min(n_image, max(count, 1 if keep_ref > 0 else 0))


def alive_in_span(alive: torch.Tensor, span) -> torch.Tensor:
    """Original indices of an image's grid tokens still alive, in raster order of its grid."""
    positions = span.token_positions(alive.device)
    return positions[alive[positions]]


def keep_top(seq: SequenceState, scores: torch.Tensor, alive: torch.Tensor, keep_ref: int, n_ref: int) -> torch.Tensor:
    """Per image, the ``keep`` highest-scoring alive tokens (original-index masks, (B, T) bool)."""
    keep = torch.zeros_like(seq.vision)
    for b, spans in enumerate(seq.spans):
        for span in spans:
            cand = alive_in_span(alive[b], span)
            k = min(image_count(keep_ref, n_ref, span.length), cand.numel())
            if k:
                keep[b, cand[scores[b, cand].topk(k).indices]] = True
    return keep
