"""A checkpoint's optimizer, scheduler, scaler and RNG state as safetensors + JSON: nothing to unpickle.

The stock Trainer writes this state with ``torch.save`` (a pickle) and reads it with
``torch.load(weights_only=True)``. adsc has it write model-only checkpoints instead
(``save_only_model=True``: weights and ``trainer_state.json``) and keeps the rest itself, through
public parts only: ``ResumeState.save`` runs in ``CompleteCheckpoints.on_save`` on every process
before the checkpoint is marked complete; the ``ResumeState`` callback loads the files back at
the points where transformers 5.24 loads its own, so a resume takes the same path:

- optimizer, scheduler, scaler: ``on_train_begin``, the first event after the Trainer has built
  and prepared them (where it would have loaded ``optimizer.pt`` / ``scheduler.pt``);
- RNG, when the checkpoint ends an epoch: ``on_epoch_begin``, before the epoch's data iterator is
  made (making it draws a seed from the global generator);
- RNG, when the checkpoint is inside an epoch: the first ``on_step_begin``, after the Trainer has
  skipped the batches already trained and fetched this step's batches (its own reload point).

Gradient accumulation needs nothing: a checkpoint is written only after an optimizer step, when
no gradient is pending. DeepSpeed and FSDP shard the optimizer in their own formats; there the
stock state files stay (``uses_own_state_files``), see docs/training.md.
"""

from __future__ import annotations

import json
import logging
import os
import random

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

logger = logging.getLogger("adsc.training")
OPTIMIZER = "adsc_optimizer"  # .safetensors (tensors) + .json (param groups, scalar state)
SCHEDULER = "adsc_scheduler.json"
SCALER = "adsc_scaler.json"
RNG = "adsc_rng_{}"  # per process: .safetensors (generator states) + .json (Python's and numpy's rest)


def uses_own_state_files(training_args) -> bool:
    """Whether adsc writes the resume state (True unless DeepSpeed / FSDP shard it, or the run asked for weights only)."""
    sharded = bool(training_args.deepspeed or training_args.fsdp) or any(
        os.environ.get(f"ACCELERATE_USE_{name}", "false").lower() in ("1", "true") for name in ("DEEPSPEED", "FSDP"))
    return not (sharded or training_args.save_only_model)


def check_resumable(checkpoint: str) -> None:
    """Refuse, before anything is loaded, a checkpoint whose state is not in adsc's files (an older layout)."""
    if not os.path.isfile(os.path.join(checkpoint, OPTIMIZER + ".safetensors")):
        raise ValueError(f"{checkpoint} has no {OPTIMIZER}.safetensors: its optimizer state is in another layout "
                         "(an earlier adsc's); finish the run with the adsc that started it, or use a new --output_dir")


class ResumeState(TrainerCallback):
    """Writes the trainer's resume state beside each checkpoint; restores it from ``checkpoint`` when given."""

    def __init__(self, trainer, checkpoint: str | None):
        self.trainer, self.checkpoint = trainer, checkpoint
        self.rng_pending = False

    # ------------------------------------------------------------------ writing
    def save(self, folder: str) -> None:
        t = self.trainer
        os.makedirs(folder, exist_ok=True)
        if t.args.should_save:  # optimizer and schedule are the same on every process (DDP); one copy
            save_optimizer(t.optimizer, folder)
            _write_json(os.path.join(folder, SCHEDULER), _jsonable(t.lr_scheduler, "scheduler"))
            scaler = getattr(t.accelerator, "scaler", None)
            if scaler is not None:
                _write_json(os.path.join(folder, SCALER), _jsonable(scaler, "gradient scaler"))
        save_rng(folder, t.args.process_index)

    # ------------------------------------------------------------------ restoring
    def on_train_begin(self, args, state, control, **kwargs):
        if self.checkpoint is None:
            return
        t, folder = self.trainer, self.checkpoint
        load_optimizer(t.optimizer, folder)
        t.lr_scheduler.load_state_dict(_read_json(os.path.join(folder, SCHEDULER)))
        scaler = getattr(t.accelerator, "scaler", None)
        if scaler is not None and os.path.isfile(os.path.join(folder, SCALER)):
            scaler.load_state_dict(_read_json(os.path.join(folder, SCALER)))
        self.rng_pending = True

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is whole exactly when the checkpoint closed an epoch: no batches to skip
        if self.rng_pending and float(state.epoch or 0).is_integer():
            self._restore_rng(args)

    def on_step_begin(self, args, state, control, **kwargs):
        if self.rng_pending:
            self._restore_rng(args)

    def _restore_rng(self, args) -> None:
        self.rng_pending = False
        if not load_rng(self.checkpoint, args.process_index):
            logger.warning("%s has no random state for process %d (another number of processes?): the resumed run "
                           "draws other random numbers than an uninterrupted one", self.checkpoint, args.process_index)


# ---------------------------------------------------------------------- optimizer
def save_optimizer(optimizer, folder: str) -> None:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            name = f"{pid}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().contiguous().cpu()
            elif isinstance(value, (int, float, bool)) or value is None:
                scalars[name] = value
            else:
                raise TypeError(f"optimizer state {key!r} is a {type(value).__name__}, which has no safetensors or "
                                "JSON form; use a torch optimizer (--optim adamw_torch)")
    save_file(tensors, os.path.join(folder, OPTIMIZER + ".safetensors"))
    _write_json(os.path.join(folder, OPTIMIZER + ".json"), {"param_groups": sd["param_groups"], "scalars": scalars})


def load_optimizer(optimizer, folder: str) -> None:
    tensors = load_file(os.path.join(folder, OPTIMIZER + ".safetensors"))  # torch moves them to each parameter's device
    meta = _read_json(os.path.join(folder, OPTIMIZER + ".json"))
    state: dict[int, dict] = {}
    for name, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# ---------------------------------------------------------------------- random state
def save_rng(folder: str, process: int) -> None:
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"cpu": torch.random.get_rng_state(), "numpy": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            tensors["cuda"] = torch.cuda.get_rng_state()  # this process's GPU only: others would each get a context
        else:
            tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    name = os.path.join(folder, RNG.format(process))
    save_file(tensors, name + ".safetensors")
    _write_json(name + ".json", {"python": [version, list(mt), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]})


def load_rng(folder: str, process: int) -> bool:
    name = os.path.join(folder, RNG.format(process))
    if not os.path.isfile(name + ".safetensors"):
        return False
    tensors = load_file(name + ".safetensors")
    meta = _read_json(name + ".json")
    version, mt, gauss = meta["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.random.set_rng_state(tensors["cpu"])
    if torch.cuda.is_available():
        gpus = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
        if "cuda" in tensors:
            torch.cuda.set_rng_state(tensors["cuda"])
        elif gpus and len(gpus) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(gpus)
        elif gpus:  # another number of GPUs: at least the one this process uses
            torch.cuda.set_rng_state(gpus[min(torch.cuda.current_device(), len(gpus) - 1)])
    return True


# ---------------------------------------------------------------------- JSON
def _jsonable(obj, what: str) -> dict:
    """A scheduler's or scaler's state_dict, checked to be plain numbers, strings and lists."""
    sd = obj.state_dict()
    try:
        json.dumps(sd)
    except TypeError as err:
        raise TypeError(f"the {what} {type(obj).__name__} has state without a JSON form ({err}); "
                        "use one of transformers' --lr_scheduler_type schedules") from None
    return sd


def _write_json(path: str, data) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh)


def _read_json(path: str):
    with open(path) as fh:
        return json.load(fh)
