"""``Trainer`` with what adsc needs on top, through its public methods only: skip counting, a
separate projector learning rate, and the active vision budget in every log line.

Everything else (DDP / FSDP / DeepSpeed through accelerate, gradient accumulation, checkpoints
and resume, progress bar) is the stock transformers Trainer; checkpoints.CompleteCheckpoints
marks checkpoints complete and rotates them.
"""

from __future__ import annotations

import json
import os

import torch
from transformers import Trainer

from .data import META
from .model import projector_param_names

COUNTERS = ("samples", "skipped", "missing_image", "unreadable_image", "too_long", "no_answer_tokens", "tokens",
            "answer_tokens", "empty_batches")


class TooManyBadSamples(ValueError):
    pass


class ADSCTrainer(Trainer):
    def __init__(self, *args, projector_lr: float, curriculum, max_bad_share: float, dataset_size: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.projector_lr = projector_lr
        self.curriculum = curriculum
        self.max_bad_share = max_bad_share
        self.dataset_size = dataset_size
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.first_bad: tuple[str, str] | None = None

    # ------------------------------------------------------------------ optimizer
    def create_optimizer(self, model=None):
        """AdamW over four groups: (projector | rest) x (decay | no decay for biases and norms)."""
        if self.optimizer is not None:
            return self.optimizer
        model = self.model
        proj = projector_param_names(model)
        groups = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            lr = self.projector_lr if name in proj else self.args.learning_rate
            decay = self.args.weight_decay if p.ndim >= 2 else 0.0
            groups.setdefault((lr, decay), []).append(p)
        params = [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
        optim_cls, optim_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, model)
        optim_kwargs.pop("lr", None)
        self.optimizer = optim_cls(params, lr=self.args.learning_rate, **optim_kwargs)
        return self.optimizer

    # ------------------------------------------------------------------ steps
    def training_step(self, model, inputs, num_items_in_batch=None):
        meta = inputs.pop(META, None)
        if meta is not None:
            self._count(meta)
        if num_items_in_batch is not None and int(num_items_in_batch) == 0:
            num_items_in_batch = torch.ones_like(num_items_in_batch) if torch.is_tensor(num_items_in_batch) else 1
        return super().training_step(model, inputs, num_items_in_batch)

    def _count(self, meta: dict) -> None:
        c = self.counters
        c["samples"] += len(meta["ids"]) + len(meta["skipped"])
        c["skipped"] += len(meta["skipped"])
        c["tokens"] += meta["tokens"]
        c["answer_tokens"] += meta["answer_tokens"]
        c["empty_batches"] += int(not meta["ids"])
        for rid, reason in meta["skipped"]:
            c[reason] = c.get(reason, 0) + 1
            if reason.endswith("_image") and self.first_bad is None:
                self.first_bad = (rid, reason)
        bad = c["missing_image"] + c["unreadable_image"]
        # each process sees 1/world of the data: scale its count to a whole-run estimate
        if bad and bad * self.args.world_size > self.max_bad_share * self.dataset_size:
            raise TooManyBadSamples(
                f"{bad} samples with a missing or unreadable image in the first {c['samples']} of this process "
                f"(more than max_bad_share={self.max_bad_share} of {self.dataset_size} records); first: record "
                f"{self.first_bad[0]} ({self.first_bad[1].replace('_', ' ')}). Check --image-folder, or raise --max-bad-share."
            )

    def log(self, logs, start_time=None):
        cb = self.curriculum
        if cb is not None and cb.phase is not None:
            logs["vision_budget"] = cb.budgets[cb.phase]
            logs["phase"] = cb.phase + 1
        super().log(logs, start_time)

    # ------------------------------------------------------------------ counters in checkpoints
    def save_counters(self, folder: str) -> None:
        """This process's sample counts beside a checkpoint (CompleteCheckpoints calls it on every save)."""
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"adsc_counters_{self.args.process_index}.json"), "w") as fh:
            json.dump({"counters": self.counters, "first_bad": self.first_bad}, fh)

    def restore_counters(self, checkpoint: str) -> None:
        path = os.path.join(checkpoint, f"adsc_counters_{self.args.process_index}.json")
        if os.path.isfile(path):
            with open(path) as fh:
                saved = json.load(fh)
            self.counters.update(saved["counters"])
            self.first_bad = tuple(saved["first_bad"]) if saved["first_bad"] else None
