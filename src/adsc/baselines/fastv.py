"""FastV (pkunlp-icler/FastV): prune once, by attention at the layer before the pruning layer.

FastV's "K" is our pruning layer with ``drop_position="before"``: layers 0..K-1 see every
token and layer K is the first on the kept set. Its code ranks with ``layer_outputs[1]`` read
at ``idx == K`` -- the attention weights of layer K-1 (0-indexed), i.e. the last layer that saw
every token -- so we score with layer K-1's own norm, q/k projections and rotary positions,
from that layer's input (recorded by the engine's probe). Top-k kept in original order,
original positions kept (gaps stay), prefill only; decoding runs on the pruned cache.
"""

from __future__ import annotations

import torch

from ..engine import Selector, StageInput
from ..engine.state import SequenceState
from ..schedule import Schedule
from .common import keep_top, slot_view, to_original
from .scores import attention_scores


class FastVSelector(Selector):
    reads_layer_before = True

    def __init__(self, schedule: Schedule, score: str = "last"):
        self.schedule, self.score = schedule, score

    def keep_vision(self, seq: SequenceState, step: StageInput) -> torch.Tensor:
        if step.before is None:
            raise RuntimeError("fastv needs the input of the layer before its pruning layer; the engine probe did not record it")
        hidden, layer, kwargs = step.before
        # the probed layer runs in the previous stage's layout, with that layout's (cos, sin)
        orig, valid = slot_view(seq, step.previous)
        scores = attention_scores(layer, hidden, kwargs["position_embeddings"], valid.to(hidden.device), self.score)
        scores = to_original(scores, orig, seq.length, float("-inf"))
        alive = to_original(valid, orig, seq.length, False) & seq.vision
        return keep_top(seq, scores.to(alive.device), alive, self.schedule.keep_counts[step.stage], self.schedule.vision_tokens)
