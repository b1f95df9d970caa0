"""How many vision tokens each decoder layer sees, and the solver between ratio and budget.

Vocabulary used across the package:

* ``stage_layers`` -- 0-indexed decoder layers that are the *first* to run on a reduced set.
  Layers ``[0, stage_layers[0])`` see every vision token. (``CompressionConfig`` also accepts
  the "after" convention and converts to this one.)
* ``keep_counts`` -- vision tokens alive from each stage layer on (for one reference image).
* budget -- the paper's figure of merit: the mean of the per-layer vision-token count over
  *all* decoder layers (576 tokens kept until layer 8 of 32, then 300, averages 375).

ADSC keeps ``k = floor((1 - r) * n)`` of the ``n`` tokens alive at each stage (paper, Eq. 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPS = 1e-9  # (1 - 1/3) * 576 is 383.99999...; floor must still give 384


class BudgetError(ValueError):
    """A target budget that no drop ratio reaches with the given pruning layers."""


@dataclass(frozen=True)
class Schedule:
    num_layers: int
    vision_tokens: int
    stage_layers: tuple[int, ...]
    keep_counts: tuple[int, ...]
    ratio: float | None = None  # the drop ratio that produced the counts, if any

    def __post_init__(self):
        if len(self.stage_layers) != len(self.keep_counts):
            raise ValueError("stage_layers and keep_counts must have the same length")
        if list(self.stage_layers) != sorted(set(self.stage_layers)):
            raise ValueError(f"stage layers must be strictly increasing, got {self.stage_layers}")
        prev = self.vision_tokens
        for count in self.keep_counts:
            if not 0 <= count <= prev:
                raise ValueError(f"keep counts must not grow: {self.keep_counts} from {self.vision_tokens}")
            prev = count

    def tokens_per_layer(self) -> list[int]:
        """Vision tokens processed by each decoder layer, layer 0 first."""
        counts, current, stage = [], self.vision_tokens, 0
        for layer in range(self.num_layers):
            while stage < len(self.stage_layers) and self.stage_layers[stage] <= layer:
                current = self.keep_counts[stage]
                stage += 1
            counts.append(current)
        return counts

    @property
    def average(self) -> float:
        return average_budget(self.num_layers, self.vision_tokens, self.stage_layers, self.keep_counts)

    def table(self) -> str:
        """A per-layer table a person can read."""
        rows = ["layer  vision_tokens  kept_%"]
        for layer, n in enumerate(self.tokens_per_layer()):
            mark = "  <- drop" if layer in self.stage_layers else ""
            rows.append(f"{layer:>5}  {n:>13}  {100.0 * n / self.vision_tokens:6.1f}{mark}")
        ratio = "" if self.ratio is None else f", drop ratio {self.ratio:.4f}"
        rows.append(f"average over {self.num_layers} layers: {self.average:.2f} of {self.vision_tokens}{ratio}")
        return "\n".join(rows)


def keep_count(n: int, ratio: float) -> int:
    """Tokens kept when a share ``ratio`` of ``n`` is dropped: floor((1 - r) * n)."""
    return int(math.floor((1.0 - ratio) * n + _EPS))


def counts_from_ratio(vision_tokens: int, ratio: float, num_stages: int) -> tuple[int, ...]:
    counts, n = [], vision_tokens
    for _ in range(num_stages):
        n = keep_count(n, ratio)
        counts.append(n)
    return tuple(counts)


def average_budget(num_layers: int, vision_tokens: int, stage_layers, keep_counts) -> float:
    bounds = list(stage_layers) + [num_layers]
    total = vision_tokens * bounds[0]
    for i, count in enumerate(keep_counts):
        total += count * (bounds[i + 1] - bounds[i])
    return total / num_layers


def schedule_from_ratio(num_layers: int, vision_tokens: int, stage_layers, ratio: float) -> Schedule:
    stage_layers = tuple(stage_layers)
    counts = counts_from_ratio(vision_tokens, ratio, len(stage_layers))
    return Schedule(num_layers, vision_tokens, stage_layers, counts, ratio)


def schedule_from_counts(num_layers: int, vision_tokens: int, stage_layers, keep_counts) -> Schedule:
    return Schedule(num_layers, vision_tokens, tuple(stage_layers), tuple(int(c) for c in keep_counts))


def reachable_budgets(num_layers: int, vision_tokens: int, stage_layers) -> tuple[float, float]:
    """(lowest, highest) average budget a ratio in [0, 1) can give with these layers.

    The lowest is reached when everything is dropped at the first stage: nothing deeper can
    go lower, so budgets below ``vision_tokens * stage_layers[0] / num_layers`` are out of reach.
    """
    if not stage_layers:
        return float(vision_tokens), float(vision_tokens)
    low = average_budget(num_layers, vision_tokens, stage_layers, [0] * len(stage_layers))
    return low, float(vision_tokens)


def _bisect(predicate, lo: float, hi: float, steps: int = 80) -> float:
    """Smallest x in [lo, hi] with predicate(x) true, for a predicate monotone in x."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid
    return hi


def solve_ratio(num_layers: int, vision_tokens: int, stage_layers, budget: float) -> Schedule:
    """The drop ratio whose schedule averages closest to ``budget`` vision tokens per layer.

    The average is a step function of the ratio (counts are floored), so an exact hit is
    rare; the nearest step wins and the returned ratio is the middle of that step's interval,
    away from the floor boundaries.
    """
    stage_layers = tuple(stage_layers)
    low, high = reachable_budgets(num_layers, vision_tokens, stage_layers)
    if not stage_layers:
        raise BudgetError("no pruning layers: the budget is the full vision-token count")
    if not (low < budget <= high) or (budget - low) < 0.5:
        raise BudgetError(
            f"budget {budget} cannot be reached with pruning layers {list(stage_layers)} of {num_layers}: "
            f"reachable averages lie in ({low:.2f}, {high:.0f}]. Lower the first pruning layer to reach "
            f"smaller budgets (the first {stage_layers[0]} layers always see all {vision_tokens} tokens)."
        )

    def avg(r: float) -> float:
        return average_budget(num_layers, vision_tokens, stage_layers, counts_from_ratio(vision_tokens, r, len(stage_layers)))

    top = 1.0 - 1e-12
    r_at = _bisect(lambda r: avg(r) <= budget, 0.0, top)
    candidates = [r_at]
    below = avg(r_at)
    if below < budget:  # the step just before may be closer
        r_prev = _bisect(lambda r: avg(r) < avg(r_at) + 1e-9 and r >= 0, 0.0, r_at)
        candidates.append(max(0.0, r_prev - 1e-9))
    best = min(candidates, key=lambda r: (abs(avg(r) - budget), r))
    counts = counts_from_ratio(vision_tokens, best, len(stage_layers))
    # middle of the interval of ratios giving exactly these counts
    same = lambda r: counts_from_ratio(vision_tokens, r, len(stage_layers)) == counts  # noqa: E731
    lo = _bisect(lambda r: same(r) or r > best, 0.0, best) if best > 0 else 0.0
    hi = _bisect(lambda r: not same(r) and r > best, best, top)
    ratio = round((lo + hi) / 2, 6)
    if not same(ratio):
        ratio = best
    return Schedule(num_layers, vision_tokens, stage_layers, counts, ratio)
