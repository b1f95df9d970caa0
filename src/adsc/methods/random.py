"""Random: the control for ADSC. Same counts per layer (budget-matched exactly like ADSC), but a
fixed random pattern per grid shape and ``config.seed`` instead of an even spread, so cached and
uncached runs, and padded and single runs, see the same tokens."""

from __future__ import annotations

from .adsc import ADSC, UniformSelector


class Random(ADSC):
    name = "random"
    summary = "a fixed seeded random pattern per grid, ADSC's counts"

    def selector(self, config, schedule):
        return UniformSelector(schedule.ratio, len(schedule.stage_layers), "random", config.phase, config.seed)
