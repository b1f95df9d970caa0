"""Optimizer, scheduler, scaler and RNG state as safetensors + JSON: nothing is unpickled.

transformers' Trainer stores these with ``torch.save`` (pickle) and reads them with
``torch.load(weights_only=True)``, a restricted unpickler. We go further for the code paths we
own (single process and DDP): tensors go to ``.safetensors``, everything else to ``.json``.
DeepSpeed and FSDP keep their own sharded checkpoint formats (see docs/training.md).
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def _write_json(path: str, data) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh)


def _read_json(path: str):
    with open(path) as fh:
        return json.load(fh)


def save_optimizer(optimizer, directory: str) -> None:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().contiguous().cpu()
            elif isinstance(value, (int, float, bool)) or value is None:
                scalars[f"{pid}.{key}"] = value
            else:
                raise TypeError(f"optimizer state {key!r} of type {type(value).__name__} has no safe format")
    save_file(tensors, os.path.join(directory, "optimizer.safetensors"))
    _write_json(os.path.join(directory, "optimizer.json"), {"param_groups": sd["param_groups"], "scalars": scalars})


def load_optimizer(optimizer, directory: str, device=None) -> bool:
    path = os.path.join(directory, "optimizer.safetensors")
    if not os.path.isfile(path):
        return False
    tensors = load_file(path, device=str(device) if device is not None and str(device) != "cpu" else "cpu")
    meta = _read_json(os.path.join(directory, "optimizer.json"))
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return True


def save_jsonable(obj, path: str) -> None:
    """A scheduler or GradScaler state_dict: plain numbers and lists only."""
    try:
        _write_json(path, obj.state_dict())
    except TypeError as err:
        raise TypeError(f"{type(obj).__name__} state has no JSON form: {err}") from None


def load_jsonable(obj, path: str) -> bool:
    if not os.path.isfile(path):
        return False
    obj.load_state_dict(_read_json(path))
    return True


def save_rng(directory: str, name: str) -> None:
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"cpu": torch.random.get_rng_state(), "numpy": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.random.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    save_file(tensors, os.path.join(directory, f"{name}.safetensors"))
    _write_json(
        os.path.join(directory, f"{name}.json"),
        {"python": [version, list(mt), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]},
    )


def load_rng(directory: str, name: str) -> bool:
    path = os.path.join(directory, f"{name}.safetensors")
    if not os.path.isfile(path):
        return False
    tensors = load_file(path)
    meta = _read_json(os.path.join(directory, f"{name}.json"))
    version, mt, gauss = meta["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.random.set_rng_state(tensors["cpu"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.random.set_rng_state_all(cuda)
        else:  # a different GPU count: at least restore this process's device
            torch.cuda.random.set_rng_state(cuda[min(torch.cuda.current_device(), len(cuda) - 1)])
    return True
