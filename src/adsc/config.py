"""``CompressionConfig``: what to drop, where, and how much. JSON in, JSON out.

A config is model-agnostic: the layer range and the budget are checked against a model's
depth by :meth:`CompressionConfig.schedule` (called by :func:`adsc.compress`). What a method
does with it lives in :mod:`adsc.methods`, looked up by name in :mod:`adsc.registry`
(which ``adsc.methods`` fills: methods import this module, so this module cannot import them).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields

from .checks import ConfigError
from .registry import get_method
from .schedule import Schedule

__all__ = ["CONFIG_NAME", "CompressionConfig", "ConfigError", "read_config_file", "unknown_keys"]

CONFIG_NAME = "adsc_config.json"
PATTERNS = ("grid2d", "stride1d")
DROP_POSITIONS = ("before", "after")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite real number; bools are refused (True would silently be 1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _checked_layers(layers) -> tuple[int, ...] | None:
    """``layers`` as a tuple of ints, or ConfigError: one int, strings, fractions and bools are refused."""
    if layers is None:
        return None
    if _is_int(layers):
        raise ConfigError(f"layers must be a list of decoder-layer indices, got the single number {layers}: write [{layers}]")
    if not isinstance(layers, (list, tuple)):
        raise ConfigError(f"layers must be a list of decoder-layer indices such as [2, 8, 16, 24] (or null for the "
                          f"method's default), got {type(layers).__name__} {layers!r}")
    bad = [x for x in layers if not _is_int(x) or x < 0]
    if bad:
        raise ConfigError(f"layers must be whole non-negative layer indices, got {bad!r} in {list(layers)!r}")
    return tuple(int(x) for x in layers)


def _check_field_types(cfg: "CompressionConfig") -> None:
    """Each field of the wrong type named with its fix (JSON files and CLIs hand in anything)."""
    for name in ("method", "pattern", "drop_position"):
        value = getattr(cfg, name)
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {type(value).__name__} {value!r}")
    for name, example in (("drop_ratio", "0.5"), ("budget", "192")):
        value = getattr(cfg, name)
        if value is not None and not _is_number(value):
            raise ConfigError(f"{name} must be a finite number such as {example} (or null), got {type(value).__name__} {value!r}")
    if not _is_number(cfg.phase):
        raise ConfigError(f"phase must be a number in [0, 1) such as 0.5, got {type(cfg.phase).__name__} {cfg.phase!r}")
    for name, example in (("vision_tokens", "576"), ("seed", "0")):
        value = getattr(cfg, name)
        if not _is_int(value):
            raise ConfigError(f"{name} must be a whole number such as {example}, got {type(value).__name__} {value!r}")
    if not isinstance(cfg.options, dict):
        raise ConfigError(f"options must be a dict of the method's settings (e.g. {{}}), got "
                          f"{type(cfg.options).__name__} {cfg.options!r}")
    cfg.layers = _checked_layers(cfg.layers)


def unknown_keys(cls, data: dict) -> list[str]:
    """Keys of ``data`` that are not fields of the dataclass ``cls`` (for from_dict checks)."""
    return sorted(set(data) - {f.name for f in fields(cls)})


@dataclass
class CompressionConfig:
    """Where and how much to compress the vision tokens inside the language model.

    Args:
        method: a registered method (:mod:`adsc.methods`): "adsc" (uniform spatial dropping, the
            paper's method), "random" (uniform at random, seeded), or a baseline: "fastv",
            "pyramiddrop", "tome".
        layers: pruning layers, 0-indexed decoder layers (see ``drop_position``). None (default):
            the method's own default -- (2, 8, 16, 24) for ADSC and random, K=2 for FastV, ...;
            () turns compression off.
        drop_ratio: share r of the *remaining* vision tokens dropped at every pruning layer;
            keeps floor((1 - r) * n). Give this or ``budget``.
        budget: target average number of vision tokens over all decoder layers (the paper's
            192 / 128 / 64 for 576); solved into ``drop_ratio`` for ``vision_tokens`` per image.
        vision_tokens: tokens of the reference image the budget refers to (576 for LLaVA-1.5).
        pattern: "grid2d" spreads survivors evenly over the image's 2-D token grid (default:
            keeps both rows and columns, the closest reading of "uniformly spaced spatial
            positions"); "stride1d" takes an even stride over raster order.
        phase: where inside each sampling cell the survivor sits, in [0, 1); 0.5 = centre.
        drop_position: "before" (default): layer l is the first to run on the reduced set, so
            layers 0..l-1 see every token -- the paper's "576 reduced to 300 at layer 8: the
            first 8 layers operate on the full set". "after": layer l is the last on the full set.
        seed: seed of the "random" method.
        options: the method's own settings (its ``Options`` dataclass in :mod:`adsc.methods`);
            unknown keys are refused with the known ones listed.
    """

    method: str = "adsc"
    layers: tuple[int, ...] | None = None
    drop_ratio: float | None = None
    budget: float | None = None
    vision_tokens: int = 576
    pattern: str = "grid2d"
    phase: float = 0.5
    drop_position: str = "before"
    seed: int = 0
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self, num_layers: int | None = None) -> None:
        """ConfigError naming the field and the fix; with ``num_layers`` also the layer range."""
        _check_field_types(self)

        get_method(self.method).options(self.options)  # unknown methods and options name the known ones
        if self.pattern not in PATTERNS:
            raise ConfigError(f"unknown pattern {self.pattern!r}; choose one of {', '.join(PATTERNS)}")
        if self.drop_position not in DROP_POSITIONS:
            raise ConfigError(f"drop_position must be 'before' or 'after', got {self.drop_position!r}")
        if (self.drop_ratio is None) == (self.budget is None):
            raise ConfigError("set exactly one of drop_ratio (e.g. 0.5) or budget (e.g. 192 vision tokens)")
        if self.drop_ratio is not None and not 0.0 <= self.drop_ratio < 1.0:
            raise ConfigError(f"drop_ratio must lie in [0, 1), got {self.drop_ratio}; 0 drops nothing")
        if self.budget is not None and self.budget <= 0:
            raise ConfigError(f"budget must be a positive number of vision tokens, got {self.budget}")
        if not 0.0 <= self.phase < 1.0:
            raise ConfigError(f"phase must lie in [0, 1), got {self.phase}")
        if self.vision_tokens <= 0:
            raise ConfigError(f"vision_tokens must be positive, got {self.vision_tokens}")
        if self.layers is not None and len(set(self.layers)) != len(self.layers):
            raise ConfigError(f"pruning layers must be distinct, got {list(self.layers)}")
        if num_layers is not None and self.layers is not None:
            lo, hi = (1, num_layers - 1) if self.drop_position == "before" else (0, num_layers - 2)
            bad = [x for x in self.layers if not lo <= x <= hi]
            if bad:
                raise ConfigError(
                    f"pruning layers {bad} out of range for a {num_layers}-layer decoder: with "
                    f"drop_position={self.drop_position!r} use layers in [{lo}, {hi}] "
                    "(layer 0 always sees the full sequence so the cache length generate reads stays right)"
                )

    def stage_layers(self) -> tuple[int, ...] | None:
        """Pruning layers in the package's internal convention (first layer on the reduced set);
        None when they are left to the method."""
        if self.layers is None:
            return None
        shift = 0 if self.drop_position == "before" else 1
        return tuple(sorted(x + shift for x in self.layers))

    def schedule(self, num_layers: int) -> Schedule:
        """Resolve against a decoder depth: the method's layers and its counts for the ratio or budget."""
        return get_method(self.method).schedule(self, num_layers)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        out = asdict(self)
        out["layers"] = None if self.layers is None else list(self.layers)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "CompressionConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a compression config is a JSON object of fields, got {type(data).__name__}")
        unknown = unknown_keys(cls, data)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known keys are {sorted(f.name for f in fields(cls))}")
        return cls(**data)

    def save_pretrained(self, directory: str | os.PathLike) -> str:
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_NAME)
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "CompressionConfig":
        path = os.fspath(path)
        data = read_config_file(path)
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{_config_path(path)}: {err}") from None

    def replace(self, **changes) -> "CompressionConfig":
        data = self.to_dict()
        data.update(changes)
        if "budget" in changes and "drop_ratio" not in changes:
            data["drop_ratio"] = None
        if "drop_ratio" in changes and "budget" not in changes:
            data["budget"] = None
        return type(self).from_dict(data)


def _config_path(path: str) -> str:
    return os.path.join(path, CONFIG_NAME) if os.path.isdir(path) else path


def read_config_file(path: str | os.PathLike) -> dict:
    """The JSON object of a saved config (a folder: its adsc_config.json); ConfigError naming the file and the fix."""
    path = _config_path(os.fspath(path))
    if not os.path.isfile(path):
        raise ConfigError(f"no file {path}; save one with CompressionConfig.save_pretrained(dir)")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not a JSON file ({err}); write it with CompressionConfig.save_pretrained") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object of compression fields "
                          '(e.g. {"budget": 192})')
    return data
