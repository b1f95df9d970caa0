"""Per-layer vision-token counts of each baseline, solved for a target average budget.

The figure of merit is the same for every method: the mean over *all* decoder layers of the
vision tokens a layer processes (for the reference image of ``config.vision_tokens``). Each
method has one free parameter, monotone in that average, which is solved by bisection to the
nearest reachable step (within 1 token whenever the budget is reachable):

* fastv -- keep count k after layer K (closed form).
* pyramiddrop -- lambda; stage s keeps int(n * lambda^(s+1)) as in its repository.
* tome -- r, tokens merged per merging layer (fractional: cumulative floor(r * i)), at most
  half of the current tokens per layer (bipartite matching cannot merge more).

Layers: explicit ``config.layers`` are used as given (``drop_position`` applies). Left at the
package default (2, 8, 16, 24) -- ADSC's layers -- each baseline takes its own published
default instead: FastV K=2; PyramidDrop stages at 1/4, 2/4, 3/4 of the depth (8/16/24 of 32),
with an extra first stage at layer 2 when the budget is below what those reach (144 of 576
on 32 layers); ToMe merges at every layer from layer 2.
"""

from __future__ import annotations

import math

from ..config import CompressionConfig, ConfigError
from ..schedule import Schedule, average_budget, keep_count
from .options import resolve

PACKAGE_DEFAULT_LAYERS = CompressionConfig.__dataclass_fields__["layers"].default
_EPS = 1e-9


def _stage_layers(config: CompressionConfig, num_layers: int) -> tuple[int, ...] | None:
    """The config's pruning layers as first-reduced layers, or None when left at the default."""
    if tuple(config.layers) == tuple(PACKAGE_DEFAULT_LAYERS) and config.drop_position == "before":
        return None
    config.validate(num_layers)
    return config.stage_layers()


def _nearest(avg, lo: float, hi: float, target: float) -> float:
    """Parameter in [lo, hi] whose average is nearest ``target``; ``avg`` is non-decreasing."""
    if avg(hi) <= target:
        return hi
    if avg(lo) >= target:
        return lo
    a, b = lo, hi  # invariant: avg(a) < target <= avg(b)
    for _ in range(100):
        mid = (a + b) / 2
        a, b = (a, mid) if avg(mid) >= target else (mid, b)
    return a if abs(avg(a) - target) < abs(avg(b) - target) else b


def _check(sched: Schedule, budget: float | None, method: str, hint: str = "") -> Schedule:
    if budget is not None and abs(sched.average - budget) > 1.0:
        raise ConfigError(
            f"{method}: budget {budget} cannot be matched with pruning layers {list(sched.stage_layers)} of "
            f"{sched.num_layers} (nearest average {sched.average:.2f}). {hint}".strip()
        )
    return sched


# ---------------------------------------------------------------------------------- FastV
def fastv_schedule(config: CompressionConfig, num_layers: int) -> Schedule:
    layers = _stage_layers(config, num_layers) or (2,)
    if len(layers) != 1:
        raise ConfigError(f"fastv prunes once, after layer K: give one pruning layer, e.g. layers=(2,), got {list(config.layers)}")
    (k_layer,) = layers
    n = config.vision_tokens
    if config.drop_ratio is not None:
        keep = keep_count(n, config.drop_ratio)
    else:  # average = (n * K + keep * (L - K)) / L
        keep = min(n, max(0, round((config.budget * num_layers - n * k_layer) / (num_layers - k_layer))))
    sched = Schedule(num_layers, n, (k_layer,), (keep,), 1.0 - keep / n)
    return _check(sched, config.budget, "fastv", f"The first {k_layer} layers see all {n} tokens: lower K.")


# ---------------------------------------------------------------------------- PyramidDrop
def pyramid_counts(n: int, lam: float, stages: int) -> tuple[int, ...]:
    return tuple(int(n * lam ** (s + 1) + _EPS) for s in range(stages))


def _pyramid(n: int, num_layers: int, layers: tuple[int, ...], config: CompressionConfig) -> Schedule:
    if config.drop_ratio is not None:
        lam = 1.0 - config.drop_ratio
    else:
        avg = lambda x: average_budget(num_layers, n, layers, pyramid_counts(n, x, len(layers)))  # noqa: E731
        lam = _nearest(avg, 0.0, 1.0, config.budget)
    return Schedule(num_layers, n, layers, pyramid_counts(n, lam, len(layers)), 1.0 - lam)


def pyramiddrop_schedule(config: CompressionConfig, num_layers: int) -> Schedule:
    n = config.vision_tokens
    layers = _stage_layers(config, num_layers)
    if layers is not None:
        return _check(_pyramid(n, num_layers, layers, config), config.budget, "pyramiddrop", "Add an earlier stage.")
    quarter = tuple(sorted({min(num_layers - 1, max(1, round(num_layers * q / 4))) for q in (1, 2, 3)}))
    sched = _pyramid(n, num_layers, quarter, config)
    if config.budget is not None and abs(sched.average - config.budget) > 1.0 and 2 < quarter[0]:
        sched = _pyramid(n, num_layers, (2,) + quarter, config)  # too low for 8/16/24: start at 2 as ADSC
    return _check(sched, config.budget, "pyramiddrop", "Give earlier pruning layers.")


# ----------------------------------------------------------------------------------- ToMe
def tome_counts(n: int, r: float, merges: int) -> list[int]:
    """Tokens left after each of ``merges`` merging layers, r per layer, at most half per layer."""
    counts, current = [], n
    for i in range(1, merges + 1):
        current = max(n - int(math.floor(r * i + _EPS)), (current + 1) // 2)
        counts.append(current)
    return counts


def tome_schedule(config: CompressionConfig, num_layers: int) -> Schedule:
    opts = resolve("tome", config.options)
    n = config.vision_tokens
    layers = _stage_layers(config, num_layers) or (2,)
    merge_layers = tuple(range(layers[0], num_layers)) if opts["every_layer"] else layers

    def build(r: float) -> Schedule:
        counts = tome_counts(n, r, len(merge_layers))
        # a layer whose count does not change is no stage: it would rebuild an identical table
        keep = [i for i, c in enumerate(counts) if c < ([n] + counts)[i]]
        return Schedule(num_layers, n, tuple(merge_layers[i] for i in keep), tuple(counts[i] for i in keep), r / n)

    if config.drop_ratio is not None:
        return build(config.drop_ratio * n)
    r = _nearest(lambda x: -build(x).average, 0.0, float(n), -config.budget)
    return _check(build(r), config.budget, "tome", "Start merging earlier.")
