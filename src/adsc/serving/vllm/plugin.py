"""vLLM's ``vllm.general_plugins`` entry point: runs in every vLLM process before it builds anything."""

from __future__ import annotations

import importlib.util
import sys


def _pixtral_without_torchvision() -> None:
    """Let vLLM's LLaVA module import where torchvision is absent (CPU installs: PyPI's is CUDA-linked).

    vLLM 0.32's llava.py imports its Pixtral tower, which imports one helper from transformers'
    torchvision-backed Pixtral image processor. transformers ships the same helper in the
    Pillow-backed processor; point the import there. Only when torchvision is missing.
    """
    name = "transformers.models.pixtral.image_processing_pixtral"
    if name in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return
    from transformers.models.pixtral import image_processing_pil_pixtral

    sys.modules[name] = image_processing_pil_pixtral


def register() -> None:
    _pixtral_without_torchvision()
    from .internals import register_kv_cache_spec  # lazy: imports vLLM's engine internals; runs inside vLLM only

    register_kv_cache_spec()
