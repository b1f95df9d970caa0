"""Starting in-process vLLM engines with adsc, and reading what they allocated."""

from __future__ import annotations

import math

import adsc
from adsc.serving.vllm import engine_kwargs
from conftest import BLOCK


def start(path: str, config: adsc.CompressionConfig, **overrides):
    from vllm import LLM

    kwargs = dict(
        max_model_len=512, limit_mm_per_prompt={"image": 2, "video": 0}, max_num_seqs=8, block_size=BLOCK, dtype="float32",
        distributed_executor_backend="uni", seed=0,
    )
    kwargs.update(overrides)
    return LLM(path, **engine_kwargs(config, **kwargs))


def core(llm):
    return llm.llm_engine.engine_core.engine_core


def blocks_per_group(llm, request_id: str) -> dict[int, tuple[int, int]]:
    """{kv-cache group: (stage, blocks the request holds)} read from the running scheduler."""
    managers = core(llm).scheduler.kv_cache_manager.coordinator.single_type_managers
    return {g: (m.kv_cache_spec.stage, len(m.req_to_blocks.get(request_id, ()))) for g, m in enumerate(managers)}


def expected_blocks(kept_tokens: int) -> int:
    return math.ceil(kept_tokens / BLOCK)
