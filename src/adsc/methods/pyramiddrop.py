"""PyramidDrop (Cooperx521/PyramidDrop): drop by stages, ranked by the last instruction token.

Its code ranks at ``rank_layer = layer_idx + 1`` right after layer ``layer_idx`` ran: with
the *rank layer's* input norm, q/k projections and rotary positions it computes the softmax
attention row of the last prompt token (inference; "last instruction token"), takes the image
columns, averages heads, keeps the top int(n * lambda^(s+1)) in original order; the rank layer
is the first on the kept set. That is our ``keep_vision`` at stage layer s, verbatim.

Positions: its repository renumbers the survivors 0..L'-1 and, when decoding, shifts each
new token's position back by the number of tokens dropped. ``positions="renumber"`` does the
same: the k-th surviving real token takes the rotary (cos, sin) of the k-th real token of
the prompt (contiguous positions), and decoded tokens are rotated back by the angle of d
positions (d = tokens dropped so far), using cos(a - b) / sin(a - b) identities on the
model's own (cos, sin) -- no access to the rotary module is needed. This assumes the prompt's
real tokens have contiguous positions (true for LLaVA with plain or left-padded
``position_ids``). M-RoPE models (Qwen2-VL) have 2-D image positions: "keep" only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import Selector, StageInput
from ..engine.state import SequenceState, gather_positions
from ..schedule import Schedule, average_budget
from .base import (
    Method,
    check_budget,
    given_stage_layers,
    nearest_parameter,
    no_compression,
    option,
)
from .common import keep_top, slot_view, to_original
from .scores import attention_scores, slot_layout

_EPS = 1e-9


def uses_mrope(layer) -> bool:
    params = getattr(layer.self_attn.config, "rope_parameters", None) or {}
    return "mrope_section" in params


class PyramidDropSelector(Selector):
    def __init__(self, schedule: Schedule, positions: str = "auto"):
        self.schedule, self.positions = schedule, positions

    def keep_vision(self, seq: SequenceState, step: StageInput) -> torch.Tensor:
        if step.stage == 0:
            mrope = uses_mrope(step.layer)
            if mrope and self.positions == "renumber":
                raise ValueError("pyramiddrop positions='renumber' needs 1-D RoPE; M-RoPE (Qwen2-VL) image positions "
                                 "are 2-D: use 'keep'")
            seq.extra["renumber"] = self.positions == "renumber" or (self.positions == "auto" and not mrope)
        orig, valid = slot_view(seq, step.previous)
        full_pos = step.layer_kwargs["position_embeddings"]
        # the rank layer sees the previous stage's slots at the positions that stage used
        pos = full_pos if step.stage == 0 else self.stage_positions(seq, step.stage - 1, full_pos, True)
        scores = attention_scores(step.adapter, step.layer, step.hidden, pos, valid.to(step.hidden.device), "last",
                                  step.pattern_of(step.layer), slot_layout(seq, orig.to(step.hidden.device)))
        scores = to_original(scores, orig, seq.length, float("-inf"))
        alive = to_original(valid, orig, seq.length, False) & seq.vision
        return keep_top(seq, scores.to(alive.device), alive, self.schedule.keep_counts[step.stage], self.schedule.vision_tokens)

    def stage_positions(self, seq: SequenceState, stage: int, position_embeddings, prefill: bool, kind: str = ""):
        if not seq.extra.get("renumber"):
            return super().stage_positions(seq, stage, position_embeddings, prefill, kind)
        if prefill:
            return self._renumbered(seq, stage, position_embeddings, kind)
        # the shift is an angle per frequency: one per rotary kind (Gemma 3's local / global bases)
        cos_d, sin_d = seq.extra[("shift", stage, kind)]
        cos, sin = (t.float() for t in position_embeddings)  # new tokens at position P -> P - d
        dtype = position_embeddings[0].dtype
        return ((cos * cos_d + sin * sin_d).to(dtype), (sin * cos_d - cos * sin_d).to(dtype))

    def shifts_decode_positions(self, seq: SequenceState) -> bool:
        return bool(seq.extra.get("renumber"))  # "keep": the base class's positions

    def _renumbered(self, seq: SequenceState, stage: int, position_embeddings, kind: str):
        table = seq.stages[stage]
        # original indices of the real tokens, in order, first (stable sort puts padding last)
        real = torch.argsort((~seq.input_valid).to(torch.int8), dim=1, stable=True)
        rank = (table.valid.long().cumsum(1) - 1).clamp(min=0)
        dropped = (seq.input_valid.sum(1) - table.valid.sum(1)).clamp(max=seq.length - 1)
        # angle of d positions = angle(real token #d) - angle(real token #0), per frequency
        c_d, s_d = (t.float() for t in gather_positions(position_embeddings, real.gather(1, dropped[:, None])))
        c_0, s_0 = (t.float() for t in gather_positions(position_embeddings, real[:, :1]))
        scale2 = c_0 * c_0 + s_0 * s_0  # attention_scaling^2 of the rope type
        seq.extra[("shift", stage, kind)] = ((c_d * c_0 + s_d * s_0) / scale2, (s_d * c_0 - c_d * s_0) / scale2)
        return gather_positions(position_embeddings, real.gather(1, rank))


def pyramid_counts(n: int, lam: float, stages: int) -> tuple[int, ...]:
    """Tokens kept from each stage on: int(n * lambda^(s+1)), as its repository computes them."""
    return tuple(int(n * lam ** (s + 1) + _EPS) for s in range(stages))


def _pyramid(n: int, num_layers: int, layers: tuple[int, ...], config) -> Schedule:
    if config.drop_ratio is not None:
        lam = 1.0 - config.drop_ratio
    else:
        def average(lam: float) -> float:
            return average_budget(num_layers, n, layers, pyramid_counts(n, lam, len(layers)))

        lam = nearest_parameter(average, 0.0, 1.0, config.budget)
    return Schedule(num_layers, n, layers, pyramid_counts(n, lam, len(layers)), 1.0 - lam)


@dataclass(frozen=True)
class PyramidDropOptions:
    positions: str = option("auto", choices=("auto", "renumber", "keep"), doc=(
        "'renumber': its repository (survivors get contiguous rotary positions, decoded tokens shifted back); "
        "'keep': original positions, gaps stay; 'auto': renumber on 1-D RoPE, keep on M-RoPE (Qwen2-VL)"))


class PyramidDrop(Method):
    """Default layers: stages at 1/4, 2/4, 3/4 of the depth (8/16/24 of 32), with an extra first
    stage at layer 2 when the budget is below what those reach (144 of 576 on 32 layers)."""

    name = "pyramiddrop"
    Options = PyramidDropOptions
    default_layers = (8, 16, 24)  # of 32; scaled to the depth, see the class docstring
    summary = "top int(n * lambda^(s+1)) per stage by the last instruction token's attention"

    def schedule(self, config, num_layers):
        n = config.vision_tokens
        layers = given_stage_layers(config, num_layers)
        if layers == ():
            return no_compression(config, num_layers)
        if layers is not None:
            return check_budget(_pyramid(n, num_layers, layers, config), config.budget, "pyramiddrop", "Add an earlier stage.")
        quarter = tuple(sorted({min(num_layers - 1, max(1, round(num_layers * q / 4))) for q in (1, 2, 3)}))
        sched = _pyramid(n, num_layers, quarter, config)
        if config.budget is not None and abs(sched.average - config.budget) > 1.0 and 2 < quarter[0]:
            sched = _pyramid(n, num_layers, (2,) + quarter, config)  # too low for 8/16/24: start at 2 as ADSC
        return check_budget(sched, config.budget, "pyramiddrop", "Give earlier pruning layers.")

    def selector(self, config, schedule):
        return PyramidDropSelector(schedule, self.options(config.options).positions)
