"""Checks of a run's settings against this machine and the files they name, before anything is written.

``TrainConfig`` checks each value on its own (types, ranges, choices). What needs the machine or
the file system is checked here (bf16 without a GPU and a missing DeepSpeed file already by
``AdscTrainingArguments``): a DeepSpeed config that is not JSON, a
logger that is not installed, a model folder without safetensors weights, an image folder that
does not exist. Each failure is a ``ValueError`` naming the fix; the CLI prints it as one line.
"""

from __future__ import annotations

import importlib.util
import json
import os

import torch

from .config import TrainConfig

WEIGHTS = (".safetensors", ".safetensors.index.json")
PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin")


def check_environment(cfg: TrainConfig) -> None:
    """Everything about ``cfg`` that this machine or the file system decides; raises ValueError."""
    a, t = cfg.adsc, cfg.training
    if a.attn_implementation and a.attn_implementation.startswith("flash_attention"):
        if not torch.cuda.is_available() or importlib.util.find_spec("flash_attn") is None:
            raise ValueError(f"--attn_implementation {a.attn_implementation} needs a CUDA GPU and the flash-attn "
                             "package; pass --attn_implementation sdpa")
    if isinstance(t.deepspeed, str):  # its existence is checked by AdscTrainingArguments
        _check_json_file("--deepspeed", t.deepspeed)
    _check_report_to(t.report_to)
    check_model_folder(a.model)
    if a.image_folder is not None and not os.path.isdir(a.image_folder):
        raise FileNotFoundError(f"image folder not found: {a.image_folder}; pass the folder the records' "
                                "image paths are relative to with --image_folder")


def check_model_folder(model: str) -> None:
    """A local model folder must hold a config and safetensors weights (pickles are never loaded)."""
    if os.path.exists(model) and not os.path.isdir(model):
        raise ValueError(f"--model {model} is a file; pass the model's folder (config.json + *.safetensors) or a hub id")
    if not os.path.isdir(model):
        return  # a hub id: transformers resolves it
    names = os.listdir(model)
    if "config.json" not in names:
        raise ValueError(f"{model} has no config.json; pass a transformers model folder (save_pretrained) or a hub id")
    if not any(n.endswith(WEIGHTS) for n in names):
        pickled = [n for n in names if n in PICKLED or n.endswith(".bin")]
        found = f" (found {', '.join(sorted(pickled))}: pickles, which adsc never loads)" if pickled else ""
        raise ValueError(
            f"{model} has no safetensors weights{found}; convert once where you trust the file: "
            f"AutoModelForImageTextToText.from_pretrained('{model}', use_safetensors=False).save_pretrained('{model}')"
        )


def _check_json_file(flag: str, path: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{flag} {path}: no such file; pass a JSON config file")
    try:
        with open(path) as fh:
            json.load(fh)
    except (OSError, ValueError) as err:
        raise ValueError(f"{flag} {path} is not a readable JSON file ({err}); fix it or pass another") from None


def _check_report_to(report_to) -> None:
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    names = report_to.split(",") if isinstance(report_to, str) else list(report_to or [])
    for name in (x.strip() for x in names):
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(f"--report_to {name} is not a logger transformers knows; choose none or one of "
                             f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}")
        if name not in get_available_reporting_integrations():
            raise ValueError(f"--report_to {name}: that package is not installed; install it or pass --report_to none")
