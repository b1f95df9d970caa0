"""FastV (pkunlp-icler/FastV): prune once, by attention at the layer before the pruning layer.

FastV's "K" is our pruning layer with ``drop_position="before"``: layers 0..K-1 see every
token and layer K is the first on the kept set. Its code ranks with ``layer_outputs[1]`` read
at ``idx == K`` -- the attention weights of layer K-1 (0-indexed), i.e. the last layer that saw
every token -- so we score with layer K-1's own norm, q/k projections and rotary positions,
from that layer's input (recorded by the engine's probe). Top-k kept in original order,
original positions kept (gaps stay), prefill only; decoding runs on the pruned cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import ConfigError
from ..engine import Selector, StageInput
from ..engine.state import SequenceState
from ..schedule import Schedule, keep_count
from .base import Method, check_budget, no_compression, option
from .common import keep_top, slot_view, to_original
from .scores import attention_scores, slot_layout


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
        scores = attention_scores(step.adapter, layer, hidden, kwargs["position_embeddings"], valid.to(hidden.device),
                                  self.score, step.pattern_of(layer), slot_layout(seq, orig.to(hidden.device)))
        scores = to_original(scores, orig, seq.length, float("-inf"))
        alive = to_original(valid, orig, seq.length, False) & seq.vision
        return keep_top(seq, scores.to(alive.device), alive, self.schedule.keep_counts[step.stage], self.schedule.vision_tokens)


@dataclass(frozen=True)
class FastVOptions:
    score: str = option("last", choices=("last", "mean"), doc=(
        "'last': its code (attention of the last prompt token at the layer before K, mean over heads); "
        "'mean': its paper (average attention each image token receives from all prompt tokens)"))


class FastV(Method):
    name = "fastv"
    Options = FastVOptions
    default_layers = (2,)  # its paper's K=2
    summary = "top-k image tokens by attention, once, after layer K"

    def layers_like(self, reference):
        return tuple(reference[:1])  # prunes once: K is the first of the reference layers

    def schedule(self, config, num_layers):
        layers = self.stage_layers(config, num_layers)
        if not layers:
            return no_compression(config, num_layers)
        if len(layers) != 1:
            raise ConfigError(
                f"fastv prunes once, after layer K: give one pruning layer, e.g. layers=(2,), got {list(config.layers)}"
            )
        (k_layer,) = layers
        n = config.vision_tokens
        if config.drop_ratio is not None:
            keep = keep_count(n, config.drop_ratio)
        else:  # average = (n * K + keep * (L - K)) / L
            keep = min(n, max(0, round((config.budget * num_layers - n * k_layer) / (num_layers - k_layer))))
        sched = Schedule(num_layers, n, (k_layer,), (keep,), 1.0 - keep / n)
        return check_budget(sched, config.budget, "fastv", f"The first {k_layer} layers see all {n} tokens: lower K.")

    def selector(self, config, schedule):
        return FastVSelector(schedule, self.options(config.options).score)
