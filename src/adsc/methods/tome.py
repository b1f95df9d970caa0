"""ToMe (facebookresearch/ToMe): bipartite soft matching with size-weighted merging.

Where it merges: in the LLM's decoder layers, through the same engine as every other method.
The budget of this comparison is counted in LLM layers, and merging there is what makes the
KV cache, padding, generate and the trace work unchanged; merging in the vision tower would
hand the LLM a shorter image (a different budget accounting and a different engine). It is
also the only place where ToMe is comparable layer for layer with the pruning methods.

At each merging layer, before it runs: the metric is that layer's keys (input norm, k_proj,
before RoPE) averaged over heads; per image, the alive tokens in original order alternate
into sets A (even) and B (odd); each A token picks its most cosine-similar B token; the r
strongest edges merge (at most half the tokens). A merged token stays at its B token's
position and original rotary position; its hidden state is the size-weighted mean and its
size is the sum. Proportional attention adds log(size) to the logits of every key of the
stage (eager/sdpa masks; decoded tokens have size 1, bias 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..engine import Selector, StageInput
from ..engine.state import SequenceState
from ..schedule import Schedule
from .base import Method, check_budget, nearest_parameter, no_compression, option
from .common import alive_in_span, image_count, slot_view, to_original
from .scores import key_metric

_EPS = 1e-9


def bipartite_match(metric: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(src, dst) row indices of ``metric`` (n, c): src (set A, even rows) merges into dst (set B)."""
    n = metric.shape[0]
    r = min(r, n // 2)
    if r <= 0:
        empty = torch.zeros(0, dtype=torch.long, device=metric.device)
        return empty, empty
    unit = metric / metric.norm(dim=-1, keepdim=True)
    a_rows = torch.arange(0, n, 2, device=metric.device)
    b_rows = torch.arange(1, n, 2, device=metric.device)
    best, choice = (unit[a_rows] @ unit[b_rows].T).max(dim=-1)
    edges = best.argsort(descending=True, stable=True)[:r]
    return a_rows[edges], b_rows[choice[edges]]


class ToMeSelector(Selector):
    def __init__(self, schedule: Schedule, proportional_attention: bool = True):
        self.schedule, self.proportional = schedule, proportional_attention

    def keep_vision(self, seq: SequenceState, step: StageInput) -> torch.Tensor:
        orig, valid = slot_view(seq, step.previous)
        metric = key_metric(step.adapter, step.layer, step.hidden)
        slot_of = to_original(torch.arange(orig.shape[1], device=orig.device).expand_as(orig), orig, seq.length, -1)
        alive = to_original(valid, orig, seq.length, False) & seq.vision
        size = seq.extra.get("tome_size")
        if size is None:
            size = torch.ones(seq.vision.shape, dtype=torch.float32, device=seq.vision.device)
        keep = torch.zeros_like(alive)
        into = torch.full(seq.vision.shape, -1, dtype=torch.long, device=seq.vision.device)
        n_ref, target_ref = self.schedule.vision_tokens, self.schedule.keep_counts[step.stage]
        for b, spans in enumerate(seq.spans):
            for span in spans:
                tokens = alive_in_span(alive[b], span)
                r = tokens.numel() - image_count(target_ref, n_ref, span.length)
                rows = metric[b, slot_of[b, tokens].to(metric.device)]
                src, dst = bipartite_match(rows, r)
                src, dst = tokens[src.to(tokens.device)], tokens[dst.to(tokens.device)]
                keep[b, tokens] = True
                keep[b, src] = False
                into[b, src] = dst
        merged = torch.where(into >= 0, into, 0)
        new_size = size.scatter_add(1, merged, torch.where(into >= 0, size, 0.0))
        seq.extra[("tome", step.stage)] = (into, size, new_size)
        seq.extra["tome_size"] = new_size
        return keep

    def stage_hidden(self, seq: SequenceState, stage: int, hidden: torch.Tensor, gathered: torch.Tensor) -> torch.Tensor:
        into, size, new_size = seq.extra[("tome", stage)]
        table = seq.stages[stage]
        prev_orig, prev_valid = slot_view(seq, seq.stages[stage - 1] if stage else None)
        dev = hidden.device
        kept = table.valid.new_zeros(into.shape).scatter(1, table.orig, table.valid)
        # where each previous slot's token goes: itself if kept, its B partner if merged
        target = torch.where(kept.gather(1, prev_orig), prev_orig, into.gather(1, prev_orig))
        weight = torch.where(prev_valid & (target >= 0), size.gather(1, prev_orig), 0.0)
        slot = table.slot_of.gather(1, target.clamp(min=0)).to(dev)
        sums = torch.zeros(*gathered.shape, dtype=torch.float32, device=dev)
        sums.scatter_add_(1, slot[..., None].expand(-1, -1, hidden.shape[-1]), hidden.float() * weight.to(dev)[..., None])
        receivers = new_size > size  # tokens that absorbed others at this stage
        merged_slot = (receivers.gather(1, table.orig) & table.valid).to(dev)
        slot_size = new_size.gather(1, table.orig).to(dev)
        # only receivers change: a token that merged nothing keeps its exact hidden state
        out = torch.where(merged_slot[..., None], (sums / slot_size[..., None]).to(gathered.dtype), gathered)
        if self.proportional:  # set here, before the engine builds this stage's mask
            table.kv_bias = torch.where(table.valid, slot_size.log(), 0.0).to(table.kv_valid.device)
        return out


def tome_counts(n: int, r: float, merges: int) -> list[int]:
    """Tokens left after each of ``merges`` merging layers, r per layer, at most half per layer."""
    counts, current = [], n
    for i in range(1, merges + 1):
        current = max(n - int(math.floor(r * i + _EPS)), (current + 1) // 2)
        counts.append(current)
    return counts


@dataclass(frozen=True)
class ToMeOptions:
    proportional_attention: bool = option(True, doc=(
        "add log(size) of each merged key to the attention logits (eager and sdpa only; FlashAttention "
        "takes no additive mask)"))
    every_layer: bool = option(True, doc=(
        "merge at every layer from the first pruning layer on, as ToMe does per block; False: only at the "
        "given pruning layers"))


class ToMe(Method):
    """Budget: r, tokens merged per merging layer (fractional: cumulative floor(r * i)), solved by
    bisection; at most half of the current tokens merge per layer (bipartite matching)."""

    name = "tome"
    Options = ToMeOptions
    default_layers = (2,)  # merging starts here and, with every_layer, goes on at every layer
    summary = "bipartite soft matching, size-weighted merging inside the language model"

    def layers_like(self, reference):
        return tuple(reference[:1])  # merges at every layer from the first reference layer on

    def schedule(self, config, num_layers):
        opts = self.options(config.options)
        n = config.vision_tokens
        layers = self.stage_layers(config, num_layers)
        if not layers:
            return no_compression(config, num_layers)
        merge_layers = tuple(range(layers[0], num_layers)) if opts.every_layer else layers

        def build(r: float) -> Schedule:
            counts = tome_counts(n, r, len(merge_layers))
            # a layer whose count does not change is no stage: it would rebuild an identical table
            keep = [i for i, c in enumerate(counts) if c < ([n] + counts)[i]]
            return Schedule(num_layers, n, tuple(merge_layers[i] for i in keep), tuple(counts[i] for i in keep), r / n)

        if config.drop_ratio is not None:
            return build(config.drop_ratio * n)
        r = nearest_parameter(lambda x: -build(x).average, 0.0, float(n), -config.budget)
        return check_budget(build(r), config.budget, "tome", "Start merging earlier.")

    def selector(self, config, schedule):
        return ToMeSelector(schedule, self.options(config.options).proportional_attention)
