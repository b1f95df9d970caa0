"""Which prompt tokens every decoder layer keeps, known before the forward runs.

A serving engine needs this at scheduling time (how many KV blocks a request takes in each
layer group) and in the model runner (where each kept token's key goes). It is computed from a
request's vision spans by the method's own selector, called exactly as the Hugging Face engine
calls it during a prefill (``keep_vision`` on a one-sample SequenceState, nested stage by stage),
so both engines keep the same tokens: there is one selection rule, not two.

Vocabulary: *group stage* 0 is the layers before the first pruning layer (every token);
group stage ``g >= 1`` is the engine's stage ``g - 1``. A token's *compact index* in a group
stage is its index among the tokens that stage keeps, in original order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from ..adapters import VisionSpan
from ..config import CompressionConfig, ConfigError
from ..engine.selectors import StageInput
from ..engine.state import SequenceState
from ..methods import METHODS, get_method, resolve


def _score_free() -> tuple[str, ...]:
    return tuple(name for name, method in METHODS.items() if method.score_free)


@dataclass(frozen=True)
class RequestPlan:
    """Dropped prompt positions of one request, per group stage (stage 0 drops nothing).

    Tokens after the prompt (decoded ones) are kept by every stage, so a plan answers for any
    position, however long the request grows.
    """

    dropped: tuple[np.ndarray, ...]  # per group stage: sorted positions not kept (cumulative)

    @cached_property
    def is_identity(self) -> bool:
        return all(d.size == 0 for d in self.dropped)

    @cached_property
    def drop_counts(self) -> np.ndarray:
        """(stages,) positions each stage drops."""
        return np.array([d.size for d in self.dropped], dtype=np.int64)

    @cached_property
    def last_dropped(self) -> np.ndarray:
        """(stages,) the last position each stage drops, -1 if none: beyond it every token is kept."""
        return np.array([d[-1] if d.size else -1 for d in self.dropped], dtype=np.int64)

    def kept_before(self, stage: int, positions) -> np.ndarray:
        """Tokens kept by ``stage`` among positions ``< p``, for each p: the compact index of p."""
        positions = np.asarray(positions, dtype=np.int64)
        return positions - np.searchsorted(self.dropped[stage], positions, side="left")

    def kept(self, stage: int, positions) -> np.ndarray:
        """Whether ``stage`` keeps each position."""
        positions = np.asarray(positions, dtype=np.int64)
        dropped = self.dropped[stage]
        if dropped.size == 0:
            return np.ones(positions.shape, dtype=bool)
        at = np.searchsorted(dropped, positions, side="left")
        hit = dropped[np.minimum(at, dropped.size - 1)] == positions
        return ~hit

    def num_kept(self, stage: int, num_tokens: int) -> int:
        """Tokens ``stage`` stores for a request of ``num_tokens`` logical tokens."""
        return int(self.kept_before(stage, num_tokens))


class Planner:
    """Resolves a compression config against a decoder depth once; plans requests after."""

    def __init__(self, config: CompressionConfig, num_layers: int):
        if not get_method(config.method).score_free:
            raise ConfigError(
                f"{config.method} needs attention scores mid-forward, so its kept set is not known when a request is "
                "scheduled; serve it with the Hugging Face engine (adsc.compress). Served methods: "
                + ", ".join(_score_free())
            )
        self.config = config
        self.schedule, self.selector = resolve(config, num_layers)
        self.num_layers = num_layers

    @property
    def num_stages(self) -> int:
        """Group stages, the full first layers included."""
        return len(self.schedule.stage_layers) + 1

    def stage_of_layer(self, layer: int) -> int:
        return sum(1 for first in self.schedule.stage_layers if first <= layer)

    def plan(self, spans: list[VisionSpan]) -> RequestPlan:
        """The plan of one request from its vision spans (positions in its prompt, image grids)."""
        none = np.zeros(0, dtype=np.int64)
        if not spans:
            return RequestPlan((none,) * self.num_stages)
        length = 1 + max(int(s.token_positions().max()) for s in spans)
        vision = torch.zeros(1, length, dtype=torch.bool)
        for span in spans:
            vision[0, span.token_positions()] = True
        seq = SequenceState(torch.ones_like(vision), vision, [list(spans)], self.schedule.stage_layers)
        kept, dropped = torch.ones_like(vision), [none]
        for stage in range(len(self.schedule.stage_layers)):
            step = StageInput(stage, hidden=None, previous=None, layer=None, layer_kwargs={})
            kept = kept & (~vision | self.selector.keep_vision(seq, step))  # nested, as the engine's tables are
            dropped.append((~kept[0]).nonzero().flatten().numpy().astype(np.int64))
        return RequestPlan(tuple(dropped))


@dataclass
class StepPlan:
    """The scheduled tokens each group stage keeps in one step (indices into the step's tokens)."""

    selected: list[np.ndarray]  # per group stage: kept token indices, stage 0 = all
    query_start: list[np.ndarray]  # per group stage: (num_reqs + 1) cumulative kept counts
    seq_lens: list[np.ndarray]  # per group stage: kept tokens per request after this step
    compact: list[np.ndarray]  # per group stage: compact index of each kept token
    device: torch.device
    _gather: dict = field(default_factory=dict)

    def gather_index(self, stage: int) -> torch.Tensor:
        """Indices of stage ``stage``'s tokens among stage ``stage - 1``'s."""
        if ("rel", stage) not in self._gather:
            rel = np.searchsorted(self.selected[stage - 1], self.selected[stage])
            self._gather[("rel", stage)] = torch.from_numpy(rel).to(self.device)
        return self._gather[("rel", stage)]

    def stage_positions(self, stage: int, positions: torch.Tensor) -> torch.Tensor:
        """The step's positions ((T,) or M-RoPE's (3, T)) of the tokens ``stage`` keeps; gathered once per stage."""
        if ("pos", stage) not in self._gather:
            self._gather[("pos", stage)] = positions.index_select(positions.dim() - 1, self.absolute_index(stage))
        return self._gather[("pos", stage)]

    def absolute_index(self, stage: int) -> torch.Tensor:
        if ("abs", stage) not in self._gather:
            self._gather[("abs", stage)] = torch.from_numpy(self.selected[stage]).to(self.device)
        return self._gather[("abs", stage)]


def plan_step(plans: list[RequestPlan], computed: np.ndarray, scheduled: np.ndarray, num_stages: int,
              device) -> StepPlan | None:
    """Per stage, which of the step's tokens are kept; None when every stage keeps every token.

    Runs once per engine step on the host, so it is vectorised over the step's tokens: a token after
    its request's last dropped position (every decode token, most of a prompt's text) is kept and
    shifted by the request's drop count; only tokens of chunks that reach into an image are looked up
    one request at a time.
    """
    if all(p.is_identity for p in plans):
        return None
    computed = np.asarray(computed, dtype=np.int64)
    scheduled = np.asarray(scheduled, dtype=np.int64)
    num_reqs = len(plans)
    starts = np.concatenate([[0], np.cumsum(scheduled)])
    req = np.repeat(np.arange(num_reqs), scheduled)
    pos = computed[req] + np.arange(starts[-1]) - starts[req]
    end = computed + scheduled
    drops = np.stack([p.drop_counts for p in plans])  # (R, S)
    last = np.stack([p.last_dropped for p in plans])  # (R, S)
    selected, query_start, seq_lens, compact = [], [], [], []
    for stage in range(num_stages):
        keep = np.ones(pos.shape, dtype=bool)
        comp = pos - drops[req, stage]
        lens = end - drops[:, stage]
        slow = np.nonzero(pos <= last[req, stage])[0]
        for r in np.unique(req[slow]):
            idx = slow[req[slow] == r]
            keep[idx] = plans[r].kept(stage, pos[idx])
            comp[idx] = plans[r].kept_before(stage, pos[idx])
        for r in np.nonzero(end <= last[:, stage])[0]:
            lens[r] = plans[r].num_kept(stage, int(end[r]))
        sel = np.nonzero(keep)[0]
        counts = np.bincount(req[sel], minlength=num_reqs)
        selected.append(sel.astype(np.int64))
        query_start.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        seq_lens.append(lens.astype(np.int32))
        compact.append(comp[sel].astype(np.int64))
    return StepPlan(selected, query_start, seq_lens, compact, device)
