"""What a compression method is: a name, typed options, default layers, a schedule and a selector.

A method is one :class:`Method` object in the registry (``adsc.methods.METHODS``). The engine
never sees a method's name: :func:`adsc.methods.resolve` turns a config into a finished
:class:`~adsc.schedule.Schedule` and a :class:`~adsc.engine.Selector`, and the engine runs those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ..config import ConfigError
from ..schedule import Schedule

if TYPE_CHECKING:
    from ..config import CompressionConfig
    from ..engine import Selector


def option(default, *, choices: tuple | None = None, doc: str = ""):
    """A field of a method's options dataclass: its type is the default's; ``choices`` limits strings."""
    return dataclasses.field(default=default, metadata={"choices": choices, "doc": doc})


@dataclass(frozen=True)
class NoOptions:
    """Options of a method that has none."""


class Method:
    """One compression method. Subclass it in one file under ``adsc/methods/`` and register it.

    Attributes:
        name: the ``CompressionConfig.method`` string.
        Options: frozen dataclass of the method's ``CompressionConfig.options`` (fields made
            with :func:`option`); unknown keys and wrong types are refused.
        default_layers: the pruning layers (first layer on the reduced set) used when
            ``CompressionConfig.layers`` is None, as published for a 32-layer decoder.
        score_free: the kept set is known from the image grid alone, before the forward runs
            (a serving engine can then size caches and drop tokens before the language model).
        summary: one line for listings.
    """

    name: str = ""
    Options: type = NoOptions
    default_layers: tuple[int, ...] = ()
    score_free: bool = False
    summary: str = ""

    # ------------------------------------------------------------------ options
    def options(self, raw) -> object:
        """``raw`` (a config's ``options`` dict) as this method's typed Options; ConfigError if wrong."""
        if not isinstance(raw, dict):
            raise ConfigError(f"options must be a dict of {self.name} settings (e.g. {{}}), got {type(raw).__name__} {raw!r}")
        known = {f.name: f for f in fields(self.Options)}
        unknown = sorted(map(str, set(raw) - set(known)))
        if unknown:
            listing = ", ".join(f"{k} (default {f.default!r})" for k, f in known.items()) or "none"
            raise ConfigError(f"unknown options {unknown} for method {self.name!r}; known options: {listing}")
        for key, value in raw.items():
            check_option(self.name, known[key], value)
        return self.Options(**raw)

    def layers_like(self, reference: tuple[int, ...]) -> tuple[int, ...]:
        """This method's pruning layers on a model whose ADSC layers are ``reference`` (benchmarks
        and the testbed scale (2, 8, 16, 24) to their depth, then ask each method)."""
        return tuple(reference)

    def stage_layers(self, config: CompressionConfig, num_layers: int) -> tuple[int, ...]:
        """The config's pruning layers as first-reduced layers, or this method's default for None."""
        given = given_stage_layers(config, num_layers)
        return checked_default(self, self.default_layers, num_layers) if given is None else given

    # ------------------------------------------------------------------ to override
    def schedule(self, config: CompressionConfig, num_layers: int) -> Schedule:
        """Per-layer vision-token counts of ``config`` on a ``num_layers``-deep decoder."""
        raise NotImplementedError

    def selector(self, config: CompressionConfig, schedule: Schedule) -> Selector:
        """The selector the engine runs for ``schedule`` (built once per compress / set_config)."""
        raise NotImplementedError


def check_option(method: str, f: dataclasses.Field, value) -> None:
    """One option value against its field: the default's type (bools strict), and its choices."""
    choices = f.metadata.get("choices")
    if choices is not None:
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(f"options[{f.name!r}] of {method} must be one of {choices}, got {value!r}")
    elif isinstance(f.default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"options[{f.name!r}] of {method} must be true or false, got {value!r}")
    elif not isinstance(value, type(f.default)) or isinstance(value, bool):
        raise ConfigError(f"options[{f.name!r}] of {method} must be a {type(f.default).__name__}, got {value!r}")


def given_stage_layers(config: CompressionConfig, num_layers: int) -> tuple[int, ...] | None:
    """The config's own pruning layers as first-reduced layers (checked against the depth),
    or None when it leaves them to the method (``layers=None``)."""
    if config.layers is None:
        return None
    config.validate(num_layers)
    return config.stage_layers()


def checked_default(method: Method, layers: tuple[int, ...], num_layers: int) -> tuple[int, ...]:
    """A method's default layers, refused with the fix when the decoder is too shallow for them."""
    bad = [x for x in layers if not 1 <= x <= num_layers - 1]
    if bad:
        raise ConfigError(
            f"{method.name}'s default pruning layers {list(layers)} do not fit a {num_layers}-layer decoder "
            f"(layers {bad}); give layers= explicitly, in [1, {num_layers - 1}]"
        )
    return layers


def no_compression(config: CompressionConfig, num_layers: int) -> Schedule:
    """The schedule of ``layers=()``: no pruning layer, so nothing is dropped, for every method."""
    return Schedule(num_layers, config.vision_tokens, (), (), 0.0)


def nearest_parameter(avg, lo: float, hi: float, target: float) -> float:
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


def check_budget(sched: Schedule, budget: float | None, method: str, hint: str = "") -> Schedule:
    """``sched`` if it averages within one token of ``budget``; else ConfigError with ``hint``."""
    if budget is not None and abs(sched.average - budget) > 1.0:
        raise ConfigError(
            f"{method}: budget {budget} cannot be matched with pruning layers {list(sched.stage_layers)} of "
            f"{sched.num_layers} (nearest average {sched.average:.2f}). {hint}".strip()
        )
    return sched
