"""ADSC, the paper's method: drop a share r of the remaining vision tokens at each pruning layer,
keeping positions spread evenly over each image's token grid (no scores, no extra modules).

Schedule: keep floor((1 - r) * n) of the n alive tokens at each stage (paper, Eq. 2); a budget
(average vision tokens over all layers) is solved into r for the reference image
(``config.vision_tokens``) and r is applied to every image, whatever its grid. Selection:
``config.pattern`` / ``config.phase`` on each image's grid (:mod:`adsc.selection`), nested stages.

Time (a video span of F frames, each on the same grid): the rule runs on one frame's grid and
the same cells are kept in every frame, so a video keeps F times a frame's count and each frame
is thinned exactly like an image of that grid. Why not spread over time as well (other cells in
other frames): the kept set of a frame would then depend on its index, and a static scene would
lose the cells that a single image keeps; per-frame identity is the plain extension of the
paper's spatial rule, and the one the tests pin down.
"""

from __future__ import annotations

import torch

from ..config import ConfigError
from ..engine import Selector, StageInput
from ..engine.state import SequenceState
from ..schedule import (
    BudgetError,
    Schedule,
    counts_from_ratio,
    schedule_from_ratio,
    solve_ratio,
)
from ..selection import nested_selection
from .base import Method, no_compression


class UniformSelector(Selector):
    """Fixed positions per image grid: evenly spread (ADSC) or a fixed seeded random pattern."""

    def __init__(self, ratio: float, num_stages: int, pattern: str, phase: float, seed: int = 0):
        self.ratio, self.num_stages = ratio, num_stages
        self.pattern, self.phase, self.seed = pattern, phase, seed

    def kept_in_grid(self, grid: tuple[int, int], stage: int) -> torch.Tensor:
        """Sorted raster indices into a ``grid`` = (rows, cols) of tokens kept from ``stage`` on."""
        counts = counts_from_ratio(grid[0] * grid[1], self.ratio, self.num_stages)
        return nested_selection(grid, counts, self.pattern, self.phase, self.seed)[stage]

    def kept_in_span(self, span, stage: int) -> torch.Tensor:
        """Sorted indices into ``span``'s grid tokens kept from ``stage`` on: one frame's kept cells,
        the same in every frame (see the module docstring)."""
        cells = span.grid[0] * span.grid[1]
        kept = self.kept_in_grid(span.grid, stage)
        if span.frames == 1:
            return kept
        return (torch.arange(span.frames)[:, None] * cells + kept[None]).flatten()

    def keep_vision(self, seq: SequenceState, step: StageInput) -> torch.Tensor:
        keep = torch.zeros_like(seq.vision)
        for b, spans in enumerate(seq.spans):
            for span in spans:
                grid_positions = span.token_positions(keep.device)
                keep[b, grid_positions[self.kept_in_span(span, step.stage).to(keep.device)]] = True
        return keep


def uniform_schedule(method: Method, config, num_layers: int) -> Schedule:
    """Counts of ADSC and random: the config's ratio, or the ratio that best matches its budget."""
    layers = method.stage_layers(config, num_layers)
    if not layers:  # no pruning layers: compression off, whatever the ratio or budget says
        return no_compression(config, num_layers)
    n = config.vision_tokens
    if config.drop_ratio is not None:
        return schedule_from_ratio(num_layers, n, layers, config.drop_ratio)
    try:
        return solve_ratio(num_layers, n, layers, config.budget)
    except BudgetError as err:
        raise ConfigError(str(err)) from None


class ADSC(Method):
    name = "adsc"
    default_layers = (2, 8, 16, 24)  # budgets 192/128/64 of 576 are all reachable on 32 layers
    score_free = True
    summary = "uniform spatial dropping on each image grid (the paper's method)"

    def schedule(self, config, num_layers):
        return uniform_schedule(self, config, num_layers)

    def selector(self, config, schedule):
        return UniformSelector(schedule.ratio, len(schedule.stage_layers), config.pattern, config.phase, config.seed)
