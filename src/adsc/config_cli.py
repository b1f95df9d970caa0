"""The compression flags every ``adsc`` command spells the same way, and the config they describe.

    add_compression_arguments(parser)            # --method --layers --budget --drop-ratio ...
    config = compression_from_args(args)         # a CompressionConfig, or None when no flag was given

A command passes ``fields`` when it takes only some of them (``adsc train`` has no --method) and
``defaults`` when its own differ (``adsc schedule`` prints ADSC's schedule unless told otherwise).
Flag names follow the :class:`~adsc.config.CompressionConfig` fields they set: ``--drop-ratio``
sets ``drop_ratio``. ``--ratio`` is its old spelling in ``adsc schedule``, still accepted with a
note on stderr.
"""

from __future__ import annotations

import argparse
import sys

from .config import CONFIG_NAME, CompressionConfig, ConfigError, read_config_file
from .registry import names

FIELDS = ("method", "layers", "budget", "drop_ratio", "vision_tokens", "pattern", "drop_position")
DEPRECATED = {"--ratio": "--drop-ratio"}

_HELP = {  # what a flag means; its default is added per command
    "method": "compression method: {methods}",
    "layers": "pruning layers, 0-indexed",
    "budget": "target average vision tokens over all decoder layers (e.g. 192 / 128 / 64 of 576)",
    "drop_ratio": "share of the remaining vision tokens each pruning layer drops",
    "vision_tokens": "vision tokens per image that the budget refers to (576 for LLaVA-1.5)",
    "pattern": "which tokens survive on the image grid",
    "drop_position": "drop before or after the named layers",
}


class _StoreWithAlias(argparse.Action):
    """Stores the value; a deprecated spelling also prints which flag replaces it."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in DEPRECATED:
            print(f"{parser.prog}: note: {option_string} is deprecated; use {DEPRECATED[option_string]}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_compression_arguments(parser, *, fields=FIELDS, defaults: dict | None = None, file: bool = False,
                              title: str = "compression", aliases: bool = False):
    """Add the compression flags of ``fields`` (CompressionConfig field names) to ``parser`` in one group.

    ``defaults`` overrides a flag's default (None otherwise: the config's own default applies);
    ``file`` adds ``--compression FILE`` (a saved config the other flags then amend); ``aliases``
    accepts the deprecated spellings in ``DEPRECATED``. Returns the mutually exclusive group that
    holds ``--budget`` and ``--drop-ratio``, for a command's own alternative to them.
    """
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"no compression flag for {unknown}; known: {', '.join(FIELDS)}")
    defaults = defaults or {}
    group = parser.add_argument_group(title)
    if file:
        group.add_argument("--compression", metavar="FILE",
                           help=f"a CompressionConfig JSON file, or a folder holding {CONFIG_NAME}")
    amount = group.add_mutually_exclusive_group()
    for name in fields:
        flag = "--" + name.replace("_", "-")
        text = _HELP[name].format(methods=", ".join(names())) + _default(name, defaults)
        kwargs = {"default": defaults.get(name), "help": text}
        if name == "layers":
            kwargs.update(type=int, nargs="+")
        elif name == "vision_tokens":
            kwargs.update(type=int)
        elif name in ("budget", "drop_ratio"):
            kwargs.update(type=float)
        elif name == "pattern":
            kwargs.update(choices=("grid2d", "stride1d"))
        elif name == "drop_position":
            kwargs.update(choices=("before", "after"))
        spellings = [flag] + ([old for old, new in DEPRECATED.items() if new == flag] if aliases else [])
        target = amount if name in ("budget", "drop_ratio") else group
        target.add_argument(*spellings, dest=name, action=_StoreWithAlias, **kwargs)
    return amount


def _default(name: str, defaults: dict) -> str:
    if name in defaults:
        value = defaults[name]
        return f" (default {' '.join(map(str, value)) if isinstance(value, (list, tuple)) else value})"
    return {"method": " (default adsc)", "layers": " (default: the method's own, e.g. 2 8 16 24 for adsc)",
            "vision_tokens": " (default: read from the model)"}.get(name, "")


def _read_file(path: str) -> dict:
    try:
        return read_config_file(path)
    except ConfigError as err:
        raise ConfigError(f"--compression: {err}") from None


def compression_from_args(args, fallback: dict | None = None) -> CompressionConfig | None:
    """The CompressionConfig the parsed flags describe; None when none was given (the full model).

    ``--compression FILE`` is read first and the other flags amend it. ``fallback`` fills fields
    that neither gives (e.g. ``vision_tokens`` read from the model). Without a file, one of
    ``--budget`` / ``--drop-ratio`` is required.
    """
    given = {k: getattr(args, k) for k in FIELDS if getattr(args, k, None) is not None}
    data = _read_file(args.compression) if getattr(args, "compression", None) else None
    if data is None and not given:
        return None
    if data is None and "budget" not in given and "drop_ratio" not in given:
        raise ConfigError("compression needs --budget or --drop-ratio (or --compression FILE)")
    present = set(given) | set(data or ())
    values = {k: v for k, v in (fallback or {}).items() if k not in present}
    values.update(given)
    if data is None:
        return CompressionConfig(**values)
    return CompressionConfig.from_dict(data).replace(**values)
