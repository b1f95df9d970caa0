"""The two calls most users need: ``compress`` and ``get_handle``.

``compress`` is the one place where the three parts meet: the registry turns the config into a
schedule and a selector (:func:`adsc.methods.resolve`), the adapter says where the model's
layers are, and the engine attaches hooks that run them.
"""

from __future__ import annotations

from torch import nn

from . import methods
from .adapters import adapter_for, unwrap
from .config import CompressionConfig
from .engine import CompressionHandle
from .schedule import Schedule


def _selector_for(config: CompressionConfig, schedule: Schedule):
    """The selector of ``config`` for a schedule already solved (kept for callers of the old API;
    new code calls :func:`adsc.methods.resolve`)."""
    return methods.get_method(config.method).selector(config, schedule)


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
    schedule, selector = methods.resolve(config, len(adapter.decoder_layers(unwrap(model))))
    return CompressionHandle(model, adapter, config, schedule, selector, resolve=methods.resolve)


def get_handle(model: nn.Module) -> CompressionHandle | None:
    """The active compression handle of a model, if any."""
    return getattr(unwrap(model), "_adsc_handle", None)
