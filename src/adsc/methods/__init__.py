"""The compression methods, one file each, and the registry that maps a name to its Method.

Every method is budget-matched the same way: the figure of merit is the mean over *all* decoder
layers of the vision tokens a layer processes (for the reference image of
``config.vision_tokens``). Each method has one free parameter, monotone in that average, solved
to the nearest reachable step (within 1 token whenever the budget is reachable).

Layers: ``config.layers`` given explicitly are used as given (``drop_position`` applies to them);
``layers=None`` means the method's own published default, in the "first layer on the reduced
set" convention whatever ``drop_position`` says; ``layers=()`` means no compression.

Adding a method: one file here with a :class:`Method` subclass (its Options dataclass,
``schedule`` and ``selector``), and one entry in the tuple below. The table itself lives in
:mod:`adsc.registry`, below :mod:`adsc.config`, so the config can check names without importing
the methods (which import the config).
"""

from __future__ import annotations

from ..registry import METHODS, get_method, names, register
from .adsc import ADSC, UniformSelector
from .base import Method, NoOptions, option
from .fastv import FastV, FastVSelector
from .pyramiddrop import PyramidDrop, PyramidDropSelector
from .random import Random
from .tome import ToMe, ToMeSelector, bipartite_match

for _method in (ADSC(), Random(), FastV(), PyramidDrop(), ToMe()):
    register(_method)


def resolve(config, num_layers: int):
    """(schedule, selector) of ``config`` on a ``num_layers``-deep decoder; needs no model."""
    method = get_method(config.method)
    schedule = method.schedule(config, num_layers)
    return schedule, method.selector(config, schedule)


__all__ = [
    "METHODS", "Method", "NoOptions", "option", "names", "get_method", "register", "resolve",
    "UniformSelector", "FastVSelector", "PyramidDropSelector", "ToMeSelector", "bipartite_match",
]
