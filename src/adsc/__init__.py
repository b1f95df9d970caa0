"""adsc: Attention-Driven Self-Compression of vision tokens inside multimodal LLMs.

    import adsc
    handle = adsc.compress(model, adsc.CompressionConfig(layers=(2, 8, 16, 24), budget=192))
    model.generate(**inputs)
    handle.remove()
"""

from .api import compress, get_handle
from .config import CompressionConfig, ConfigError
from .engine import CompressionHandle, Trace, cache_bytes, cache_lengths
from .engine.regions import CompiledPrefill, compile_prefill
from .schedule import BudgetError, Schedule, reachable_budgets, schedule_from_counts, schedule_from_ratio, solve_ratio

__version__ = "0.1.0"

__all__ = [
    "compress",
    "compile_prefill",
    "CompiledPrefill",
    "get_handle",
    "CompressionConfig",
    "ConfigError",
    "CompressionHandle",
    "Trace",
    "cache_bytes",
    "cache_lengths",
    "BudgetError",
    "Schedule",
    "reachable_budgets",
    "schedule_from_counts",
    "schedule_from_ratio",
    "solve_ratio",
    "StageCache",
]


def __getattr__(name):
    if name == "StageCache":  # a transformers Cache subclass: imported on first use, `import adsc` stays light
        from .engine.cache import StageCache  # lazy: subclasses transformers' Cache; `import adsc` stays light

        return StageCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
