"""The method registry: name -> :class:`adsc.methods.Method`.

It sits below both :mod:`adsc.config` (which checks a config's method and options by name) and
:mod:`adsc.methods` (whose package fills it, one entry per method file). Importing any part of
``adsc`` imports ``adsc.methods`` first (through ``adsc/__init__``), so the table is full before
any config is built; a method from outside the package adds itself with :func:`register`.
"""

from __future__ import annotations

from .checks import ConfigError

METHODS: dict = {}  # name -> Method, filled by adsc.methods


def register(method):
    """Add ``method`` under ``method.name`` (a later one of the same name replaces it); returns it."""
    METHODS[method.name] = method
    return method


def names() -> tuple[str, ...]:
    return tuple(METHODS)


def get_method(name: str):
    """The registered method called ``name``; ConfigError listing the known ones otherwise."""
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return method
