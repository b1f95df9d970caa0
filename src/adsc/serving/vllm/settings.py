"""The compression setting of a vLLM engine, and the engine settings that would give wrong answers.

The setting travels in vLLM's public ``additional_config`` ({"adsc": <CompressionConfig dict>}),
so every process (frontend, engine core, workers) reads the same one.
"""

from __future__ import annotations

from ...config import CompressionConfig, ConfigError
from ...processors import torchvision_missing
from ..plan import Planner
from . import layout

KEY = "adsc"


class ServingConfigError(ConfigError):
    """An engine setting adsc cannot serve correctly; the message names the fix."""


def compression_of(vllm_config) -> CompressionConfig:
    extra = getattr(vllm_config, "additional_config", None) or {}
    if KEY not in extra:
        raise ServingConfigError(
            "adsc's vLLM worker or scheduler was started without a compression setting: pass "
            "--additional-config '{\"adsc\": {...}}' (adsc serve does this from --compression adsc_config.json)"
        )
    data = extra[KEY]
    if not isinstance(data, dict):
        raise ServingConfigError(f"additional_config['adsc'] must be a CompressionConfig object, got {type(data).__name__}")
    return CompressionConfig.from_dict(dict(data))


def check_engine(vllm_config) -> None:
    """Refuse engine settings under which adsc's kept-token layout would be wrong."""
    arch = layout.architecture(vllm_config.model_config.hf_config)
    problems = []
    mm_config = vllm_config.model_config.multimodal_config
    if arch in layout.QWEN2_VL and torchvision_missing() and mm_config is not None and mm_config.get_limit_per_prompt("video"):
        problems.append(
            "videos on a CPU install without torchvision: transformers' Qwen2-VL video processor needs it (adsc's "
            "plugin serves images only there); pass --limit-mm-per-prompt '{\"image\": N, \"video\": 0}'"
        )
    if arch in layout.SIZED and mm_config is not None and mm_config.enable_mm_embeds:
        problems.append(
            f"precomputed image embeddings: they come without the image's size, and a {arch} image's layout (LLaVA-NeXT: "
            "base grid, tile map, newline tokens; Mistral 3: rows closed by [IMG_BREAK]) follows it; drop "
            "--enable-mm-embeds and send the images"
        )
    if vllm_config.cache_config.enable_prefix_caching:
        problems.append(
            "prefix caching: a compressed stage's block holds kept tokens from beyond its logical range, so a cache hit "
            "would reuse wrong keys; pass --no-enable-prefix-caching"
        )
    if not vllm_config.model_config.enforce_eager:
        problems.append("compiled / CUDA-graph execution: token counts change inside the model; pass --enforce-eager")
    if vllm_config.speculative_config is not None:
        problems.append("speculative decoding: drafts and rollbacks are not planned per stage; drop --speculative-config")
    if vllm_config.parallel_config.pipeline_parallel_size > 1:
        problems.append("pipeline parallelism: stages would be split across ranks; use --pipeline-parallel-size 1")
    if getattr(vllm_config.parallel_config, "enable_dbo", False):
        problems.append("dual-batch overlap splits a step's tokens; drop --enable-dbo")
    if vllm_config.kv_transfer_config is not None:
        problems.append("KV connectors move blocks by logical position; drop --kv-transfer-config")
    if problems:
        raise ServingConfigError("adsc cannot serve with " + "; ".join(problems))


def planner_for(vllm_config) -> Planner:
    check_engine(vllm_config)
    num_layers = vllm_config.model_config.hf_text_config.num_hidden_layers
    return Planner(compression_of(vllm_config), num_layers)
