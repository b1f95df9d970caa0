"""The two calls most users need: ``compress`` and ``get_handle``."""

from __future__ import annotations

from torch import nn

from .adapters import adapter_for, unwrap
from .config import CompressionConfig
from .engine import CompressionHandle, UniformSelector
from .schedule import Schedule


def _selector_for(config: CompressionConfig, schedule: Schedule):
    if config.method in ("adsc", "random"):
        pattern = "random" if config.method == "random" else config.pattern
        return UniformSelector(schedule.ratio, len(schedule.stage_layers), pattern, config.phase, config.seed)
    from .baselines import selector_for  # score-based methods live in their own package

    return selector_for(config, schedule)


def compress(model: nn.Module, config: CompressionConfig | None = None, **overrides) -> CompressionHandle:
    """Attach vision-token compression to a loaded multimodal model, in place.

    ``model`` is a ``LlavaForConditionalGeneration`` or ``Qwen2VLForConditionalGeneration``
    (also inside a peft ``PeftModel``). Returns a handle; ``handle.remove()`` undoes it.
    """
    if config is None:
        config = CompressionConfig(**overrides)
    elif not isinstance(config, CompressionConfig):
        raise TypeError(f"config must be a CompressionConfig, got {type(config).__name__}")
    elif overrides:
        config = config.replace(**overrides)
    adapter = adapter_for(model)
    if getattr(unwrap(model), "_adsc_handle", None) is not None:
        raise RuntimeError("this model is already compressed: call handle.remove() (or adsc.get_handle(model).remove()) first")
    return CompressionHandle(model, config, adapter, _selector_for)


def get_handle(model: nn.Module) -> CompressionHandle | None:
    """The active compression handle of a model, if any."""
    return getattr(unwrap(model), "_adsc_handle", None)
