"""The output folder of a run, and the one call that loads it back as a compressed model.

Layout (LoRA): ``adapter_model.safetensors`` + ``adapter_config.json`` (LoRA weights and the full
projector, peft ``modules_to_save``), ``adsc_config.json`` (the target compression), processor
files, ``adsc_training.json`` (base model, mode, settings), ``training_args.json``,
``train_summary.json``. Full fine-tuning writes
``model.safetensors`` + ``config.json`` instead of the adapter. ``--merge`` adds ``merged/``:
a plain transformers model with the adapter folded in.
"""

from __future__ import annotations

import json
import os

from ..api import compress
from ..config import CompressionConfig
from ..loading import load_processor
from .checkpoints import replace_pickled_args

TRAINING_INFO = "adsc_training.json"
MERGED = "merged"


def save_output(trainer, out: str, comp: CompressionConfig, cfg, merge: bool = False) -> None:
    trainer.save_model(out)  # adapter or full weights (+ processor); handles ZeRO-3 / FSDP gathering
    if not trainer.args.should_save:
        return
    replace_pickled_args(out, trainer.args)
    comp.save_pretrained(out)
    info = {"base_model": cfg.adsc.model, "mode": cfg.adsc.mode, "train_config": cfg.to_dict()}
    with open(os.path.join(out, TRAINING_INFO), "w") as fh:
        json.dump(info, fh, indent=2)
    if merge and cfg.adsc.mode == "lora":
        write_merged(out)


def write_merged(out: str) -> None:
    """``out/merged``: the adapter of a finished LoRA run folded into the weights, compression config beside it."""
    with open(os.path.join(out, TRAINING_INFO)) as fh:
        info = json.load(fh)
    if info["mode"] != "lora":
        return  # full fine-tuning has no adapter to fold in
    merged_dir = os.path.join(out, MERGED)
    model = load_trained(out, merge=True, compressed=False)
    model.save_pretrained(merged_dir)
    load_processor(out).save_pretrained(merged_dir)  # also a Qwen2-VL one where torchvision is absent
    CompressionConfig.from_pretrained(out).save_pretrained(merged_dir)
    with open(os.path.join(merged_dir, TRAINING_INFO), "w") as fh:
        json.dump({**info, "mode": "merged"}, fh, indent=2)


def load_trained(path: str, merge: bool = False, dtype=None, base_model: str | None = None, compressed: bool = True, **kwargs):
    """Load a training output folder: the base model, the trained weights, compression attached.

    Returns the model in eval mode; ``adsc.get_handle(model)`` gives the compression handle and
    ``AutoProcessor.from_pretrained(path)`` the processor. ``merge=True`` folds the LoRA adapter
    into the weights (a plain transformers model, faster at inference). Weights are read from
    safetensors files only.
    """
    from transformers import AutoModelForImageTextToText

    info_path = os.path.join(path, TRAINING_INFO)
    if not os.path.isfile(info_path):
        raise FileNotFoundError(f"{path} is not an adsc training output (no {TRAINING_INFO})")
    with open(info_path) as fh:
        info = json.load(fh)
    kwargs = {"use_safetensors": True, **({"dtype": dtype} if dtype is not None else {}), **kwargs}
    if info["mode"] == "lora":
        from peft import PeftModel

        if not os.path.isfile(os.path.join(path, "adapter_model.safetensors")):
            raise FileNotFoundError(f"no adapter_model.safetensors in {path}")
        base = AutoModelForImageTextToText.from_pretrained(base_model or info["base_model"], **kwargs)
        model = PeftModel.from_pretrained(base, path)
        if merge:
            model = model.merge_and_unload()
    else:
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    model.eval()
    if compressed:
        compress(model, CompressionConfig.from_pretrained(path))
    return model
