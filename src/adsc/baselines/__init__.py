"""Baselines in the same engine: FastV, PyramidDrop, ToMe (and random, which lives with ADSC).

``selector_for(config, schedule)`` builds a method's selector; ``schedule_for(config,
num_layers)`` solves its per-layer counts for the config's budget. Both are called by the
engine and the CLI; options are documented in :mod:`adsc.baselines.options`.
"""

from __future__ import annotations

from ..config import CompressionConfig, ConfigError
from ..schedule import Schedule
from .budget import fastv_schedule, pyramiddrop_schedule, tome_schedule
from .fastv import FastVSelector
from .options import resolve
from .pyramiddrop import PyramidDropSelector
from .tome import ToMeSelector, bipartite_match

_SCHEDULES = {"fastv": fastv_schedule, "pyramiddrop": pyramiddrop_schedule, "tome": tome_schedule}


def schedule_for(config: CompressionConfig, num_layers: int) -> Schedule:
    """Per-layer vision-token counts of ``config.method`` on a ``num_layers``-deep decoder."""
    resolve(config.method, config.options)
    if config.method in ("adsc", "random"):  # random is budget-matched exactly like ADSC
        return config.schedule(num_layers)
    return _SCHEDULES[config.method](config, num_layers)


def selector_for(config: CompressionConfig, schedule: Schedule):
    opts = resolve(config.method, config.options)
    if config.method == "fastv":
        return FastVSelector(schedule, opts["score"])
    if config.method == "pyramiddrop":
        return PyramidDropSelector(schedule, opts["positions"])
    if config.method == "tome":
        return ToMeSelector(schedule, opts["proportional_attention"])
    raise ConfigError(f"no baseline selector for method {config.method!r}")


__all__ = ["schedule_for", "selector_for", "bipartite_match", "FastVSelector", "PyramidDropSelector", "ToMeSelector"]
