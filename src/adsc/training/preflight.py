"""Checks of a run's settings against this machine and the files they name, before anything is written.

``TrainConfig`` checks each value on its own (types, ranges, choices). What needs the machine or
the file system is checked here: bf16 without a GPU, a DeepSpeed config that is not there, a
logger that is not installed, ``--trainer-args`` that ``TrainingArguments`` does not take or that
clash with adsc's own flags, a model folder without safetensors weights, an image folder that
does not exist. Each failure is a ``ValueError`` naming the fix; the CLI prints it as one line.
"""

from __future__ import annotations

import importlib.util
import json
import os

import torch

from .config import TrainConfig
from .model import default_bf16

# TrainingArguments that adsc sets from its own flags: --trainer-args may not set them again
OWN_ARGS = {
    "output_dir": "--output-dir", "per_device_train_batch_size": "--per-device-batch-size",
    "gradient_accumulation_steps": "--global-batch-size", "learning_rate": "--lr", "weight_decay": "--weight-decay",
    "warmup_steps": "--warmup-ratio", "lr_scheduler_type": "--lr-scheduler", "max_grad_norm": "TrainConfig(max_grad_norm=...)",
    "num_train_epochs": "--epochs", "max_steps": "--max-steps", "bf16": "--bf16 / --no-bf16",
    "gradient_checkpointing": "--no-gradient-checkpointing", "activation_checkpointing": "--no-gradient-checkpointing",
    "gradient_checkpointing_kwargs": "--no-gradient-checkpointing",
    "activation_checkpointing_kwargs": "--no-gradient-checkpointing", "logging_steps": "--logging-steps",
    "logging_first_step": None, "save_strategy": None, "save_steps": "--save-steps",
    "save_total_limit": "--save-total-limit", "seed": "--seed", "data_seed": "--seed", "remove_unused_columns": None,
    "dataloader_num_workers": "--num-workers", "ddp_find_unused_parameters": None, "report_to": "--report-to",
    "deepspeed": "--deepspeed", "use_cpu": None,
}
WEIGHTS = (".safetensors", ".safetensors.index.json")
PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin")


def check_environment(cfg: TrainConfig) -> None:
    """Everything about ``cfg`` that this machine or the file system decides; raises ValueError."""
    if cfg.bf16 and not default_bf16():
        raise ValueError("--bf16 needs a CUDA GPU with bf16 support and none is available here; "
                         "pass --no-bf16 (fp32), or run on such a GPU")
    if cfg.attn_implementation and cfg.attn_implementation.startswith("flash_attention"):
        if not torch.cuda.is_available() or importlib.util.find_spec("flash_attn") is None:
            raise ValueError(f"--attn-implementation {cfg.attn_implementation} needs a CUDA GPU and the flash-attn "
                             "package; pass --attn-implementation sdpa")
    if cfg.deepspeed is not None:
        _check_json_file("--deepspeed", cfg.deepspeed)
    _check_report_to(cfg.report_to)
    _check_extra(cfg.extra)
    check_model_folder(cfg.model)
    if cfg.image_folder is not None and not os.path.isdir(cfg.image_folder):
        raise FileNotFoundError(f"image folder not found: {cfg.image_folder}; pass the folder the records' "
                                "image paths are relative to with --image-folder")


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


def _check_report_to(report_to: str) -> None:
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    for name in (x.strip() for x in report_to.split(",")):
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(f"--report-to {name} is not a logger transformers knows; choose none or one of "
                             f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}")
        if name not in get_available_reporting_integrations():
            raise ValueError(f"--report-to {name}: that package is not installed; install it or pass --report-to none")


def _check_extra(extra: dict) -> None:
    from transformers import TrainingArguments

    known = TrainingArguments.__dataclass_fields__
    for key in extra:
        if key in OWN_ARGS:
            flag = OWN_ARGS[key]
            how = f"set it with {flag}" if flag else "adsc sets it itself"
            raise ValueError(f"--trainer-args sets {key!r}, which adsc passes from its own settings; {how}")
        if key not in known:
            raise ValueError(f"--trainer-args: {key!r} is not a transformers TrainingArguments field; check the spelling")
