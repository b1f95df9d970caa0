"""The hook engine: stage tables, masks, selectors, and the handle that attaches them."""

from .hooks import CompressionHandle
from .selectors import Selector, StageInput
from .trace import Trace, cache_bytes, cache_lengths

__all__ = ["CompressionHandle", "Selector", "StageCache", "StageInput", "Trace", "cache_bytes", "cache_lengths"]


def __getattr__(name):
    # imported on first use: the cache subclasses transformers' Cache, and `import adsc` stays light
    if name == "StageCache":
        from .cache import StageCache  # lazy: subclasses transformers' Cache; `import adsc` stays light

        return StageCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
