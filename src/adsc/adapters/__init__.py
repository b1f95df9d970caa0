"""Per-architecture adapters. Add one here to support a new model family."""

from __future__ import annotations

from torch import nn

from .base import CAUSAL, Adapter, ImageSizeNeeded, UnsupportedModelError, VisionSpan
from .gemma3 import Gemma3Adapter
from .idefics3 import Idefics3Adapter
from .internvl import InternVLAdapter
from .llava import LlavaAdapter
from .llava_next import LlavaNextAdapter
from .llava_next_video import LlavaNextVideoAdapter
from .llava_onevision import LlavaOnevisionAdapter
from .mistral3 import Mistral3Adapter
from .qwen2_vl import Qwen2VLAdapter
from .qwen3_vl import Qwen3VLAdapter, Qwen3VLMoeAdapter

ADAPTERS: tuple[Adapter, ...] = (LlavaAdapter(), LlavaNextAdapter(), Qwen2VLAdapter(),
                                  InternVLAdapter(), Mistral3Adapter(), Idefics3Adapter(),
                                  LlavaOnevisionAdapter(), LlavaNextVideoAdapter(),
                                  Qwen3VLAdapter(), Qwen3VLMoeAdapter(), Gemma3Adapter())


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft / DDP wrapper."""
    while True:
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        else:
            return model


def adapter_for(model: nn.Module) -> Adapter:
    name = type(unwrap(model)).__name__
    for adapter in ADAPTERS:
        if name in adapter.model_classes:
            return adapter
    supported = ", ".join(c for a in ADAPTERS for c in a.model_classes)
    raise UnsupportedModelError(f"adsc does not support {name}; supported models: {supported}")


def adapter_for_config(config) -> Adapter | None:
    """The adapter of a model described by its config alone (before loading it); None if unsupported."""
    names = set(getattr(config, "architectures", None) or ())
    for adapter in ADAPTERS:
        if names & set(adapter.model_classes) or getattr(config, "model_type", None) in adapter.model_types:
            return adapter
    return None


__all__ = ["ADAPTERS", "CAUSAL", "Adapter", "ImageSizeNeeded", "LlavaAdapter", "LlavaNextAdapter", "Qwen2VLAdapter",
           "UnsupportedModelError", "VisionSpan", "adapter_for", "adapter_for_config", "unwrap"]
