"""Range checks for command-line and config values: a ``ValueError`` naming the value and the fix.

The ``adsc`` CLI prints a ``ValueError`` as one line and exits 2, so every command checks its
arguments with these before it computes or writes anything. Ints are not coerced from floats
with a fraction, nor from strings or bools: a wrong type is named, never silently changed.
"""

from __future__ import annotations

import math
import os


class ConfigError(ValueError):
    """A compression setting that cannot work; the message names the fix (re-exported by adsc.config)."""


def whole(name: str, value, low: int, high: int | None = None, fix: str = "") -> int:
    """An int in [low, high] (a float without a fraction is taken as that int)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}{fix}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}{fix}")
    return value


def real(name: str, value, low: float, high: float | None = None, strict: bool = False, high_open: bool = False,
         fix: str = "") -> float:
    """A finite number above ``low`` (strictly when ``strict``) and up to ``high`` (below it when ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}{fix}")
    too_low = value <= low if strict else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = f"> {low}" if strict else f">= {low}"
        hi = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(f"{name} must be {lo}{hi}, got {value}{fix}")
    return float(value)


def writable_dir(name: str, path: str) -> None:
    """``path`` is, or can be created as, a folder this process may write (checked without creating it)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise ValueError(f"{name} {path}: {probe} is a file, not a folder; pass a folder path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {path}: {probe} is not writable; pass a folder you can write to")


def writable_file(name: str, path: str) -> None:
    """The folder ``path`` would be written into exists and is writable; ``path`` is not a folder."""
    if os.path.isdir(path):
        raise ValueError(f"{name} {path} is a folder; pass a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"{name} {path}: the folder {parent} does not exist; create it or pass another path")
    writable_dir(name, parent)
