"""Loading a model from a hub id or a saved folder: safetensors weights only, pickles never.

A pickle (``.bin``) checkpoint can run code when it is loaded, so a folder that holds only
pickles is refused before transformers sees it, with the one-time conversion to do where the
file is trusted. Training, evaluation and the testbed all load through :func:`load_model` and
:func:`load_processor`.
"""

from __future__ import annotations

import os

import torch

from .processors import allow_qwen2_vl_without_torchvision

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin", "pytorch_model.pt")
CONVERT = ("convert it once, where you trust the file: AutoModelForImageTextToText.from_pretrained(path, "
           "use_safetensors=False).save_pretrained(path) (transformers >= 5 writes model.safetensors; older "
           "versions need save_pretrained(path, safe_serialization=True))")


class ModelFileError(ValueError):
    """A model that cannot be loaded as given; the message names the path and the fix."""


def check_safetensors(name_or_path: str) -> None:
    """A local folder must hold safetensors weights; a pickle-only one is named with its conversion."""
    if not os.path.isdir(name_or_path):
        return  # a hub id: from_pretrained(use_safetensors=True) refuses a pickle-only repository
    files = os.listdir(name_or_path)
    if any(f.endswith(".safetensors") or f in WEIGHT_FILES for f in files):
        return
    pickles = [f for f in files if f in PICKLE_FILES or f.endswith((".bin", ".pt", ".pth"))]
    if pickles:
        raise ModelFileError(f"{name_or_path} holds pickle weights only ({', '.join(sorted(pickles))}); "
                             f"adsc loads safetensors only: {CONVERT}")
    raise ModelFileError(f"{name_or_path} holds no model weights (*.safetensors); save the model there "
                         "with save_pretrained, or pass a hub id")


def load_model(name_or_path: str, dtype: torch.dtype = torch.float32, attn: str | None = None,
               device: str | None = None):
    """An image-text-to-text model (weights in ``dtype``, on ``device`` when given), in train mode
    as transformers returns it; ModelFileError naming the fix when it cannot be loaded."""
    from safetensors import SafetensorError
    from transformers import AutoModelForImageTextToText  # lazy: transformers' model classes (seconds)

    check_safetensors(name_or_path)
    kwargs = {"dtype": dtype, "use_safetensors": True}
    if attn:
        kwargs["attn_implementation"] = attn
    try:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path, **kwargs)
    except (OSError, SafetensorError) as err:  # not found on disk or on the hub, no or broken safetensors, no network
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"cannot load the model {name_or_path}: {first}; pass a local folder with config.json "
                             "and *.safetensors weights, or a hub id that has them") from None
    return model.to(device) if device else model


def load_processor(name_or_path: str):
    """The model's processor (``AutoProcessor``); a Qwen2-VL-family one builds without torchvision
    too (images only: see :mod:`adsc.processors`), as CPU installs have no torchvision."""
    from transformers import AutoProcessor

    allow_qwen2_vl_without_torchvision()
    return AutoProcessor.from_pretrained(name_or_path)
