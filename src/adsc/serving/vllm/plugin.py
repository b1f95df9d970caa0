"""vLLM's ``vllm.general_plugins`` entry point: runs in every vLLM process before it builds anything."""

from __future__ import annotations

import importlib
import sys

from ...processors import allow_qwen2_vl_without_torchvision, torchvision_missing

# vLLM 0.32 imports Qwen2-VL's ``smart_resize`` from the torchvision-backed image-processor module;
# transformers ships the same function in the Pillow-backed module beside it. (Pixtral's module, which
# vLLM's LLaVA imports too, is stood in for by adsc.processors, the one home of that shim.)
PILLOW_TWINS = {
    "transformers.models.qwen2_vl.image_processing_qwen2_vl": "transformers.models.qwen2_vl.image_processing_pil_qwen2_vl",
}


def _image_modules_without_torchvision() -> None:
    """Let vLLM's Qwen2-VL module import where torchvision is absent (CPU installs: PyPI's is CUDA-linked)."""
    for name, twin in PILLOW_TWINS.items():
        if name not in sys.modules:
            sys.modules[name] = importlib.import_module(twin)


def register() -> None:
    if torchvision_missing():
        _image_modules_without_torchvision()
        allow_qwen2_vl_without_torchvision()  # vLLM builds the HF processor for images; videos are refused
    from .internals import refuse_prompts_ending_in_vision, register_kv_cache_spec  # lazy: vLLM's engine internals

    register_kv_cache_spec()
    refuse_prompts_ending_in_vision()
