"""``Trainer`` with what adsc needs on top: atomic checkpoints, safe state files, skip counting,
a separate projector learning rate, and the active vision budget in every log line.

Everything else (DDP / FSDP / DeepSpeed through accelerate, gradient accumulation, resume,
progress bar) is the stock transformers Trainer.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import torch
from transformers import Trainer

from . import safe_state
from .checkpoints import MARKER, STAGING, fsync_tree, rotate
from .data import META
from .model import projector_param_names

logger = logging.getLogger("adsc.training")
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
        self._staging = False

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

    # ------------------------------------------------------------------ atomic checkpoints
    def _get_output_dir(self, trial):
        if self._staging:
            return os.path.join(self.args.output_dir, STAGING)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        """Write into a staging folder, then rename: a checkpoint-N folder is complete or absent."""
        name = f"checkpoint-{self.state.global_step}"
        staged = os.path.join(self.args.output_dir, STAGING, name)
        final = os.path.join(self.args.output_dir, name)
        writer = self.args.should_save
        if writer and os.path.isdir(staged):
            shutil.rmtree(staged)
        self.accelerator.wait_for_everyone()
        self._staging = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = False
        os.makedirs(staged, exist_ok=True)
        with open(os.path.join(staged, f"adsc_counters_{self.args.process_index}.json"), "w") as fh:
            json.dump({"counters": self.counters, "first_bad": self.first_bad}, fh)
        self.accelerator.wait_for_everyone()  # every process has written its files
        if writer:
            with open(os.path.join(staged, MARKER), "w") as fh:
                json.dump({"global_step": self.state.global_step, "world_size": self.args.world_size}, fh)
            fsync_tree(staged)
            if os.path.isdir(final):  # the same step saved twice: keep the newer one
                shutil.rmtree(final)
            os.rename(staged, final)
            try:
                os.rmdir(os.path.dirname(staged))  # leave no empty staging folder behind
            except OSError:
                pass
            fsync_tree(self.args.output_dir, files=False)
            rotate(self.args.output_dir, self.args.save_total_limit)
        self.accelerator.wait_for_everyone()

    def _save(self, output_dir=None, state_dict=None):
        super()._save(output_dir, state_dict)
        out = output_dir or self.args.output_dir
        if self.args.should_save:
            # Trainer pickles its TrainingArguments; keep a JSON copy instead so nothing here needs unpickling
            pickled = os.path.join(out, "training_args.bin")
            if os.path.exists(pickled):
                os.remove(pickled)
            with open(os.path.join(out, "training_args.json"), "w") as fh:
                fh.write(self.args.to_json_string())

    # ------------------------------------------------------------------ safe state files
    def _own_format(self) -> bool:
        """DeepSpeed and FSDP write their own (sharded) state; we handle plain and DDP runs."""
        return not (self.is_deepspeed_enabled or self.is_fsdp_enabled)

    def _rng_name(self) -> str:
        return "rng_state" if self.args.world_size <= 1 else f"rng_state_{self.args.process_index}"

    def _save_optimizer_and_scheduler(self, output_dir):
        if not self._own_format():
            return super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save:
            os.makedirs(output_dir, exist_ok=True)
            safe_state.save_optimizer(self.optimizer, output_dir)
            safe_state.save_jsonable(self.lr_scheduler, os.path.join(output_dir, "scheduler.json"))

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is None:
            return
        if not self._own_format():
            return super()._load_optimizer_and_scheduler(checkpoint)
        if safe_state.load_optimizer(self.optimizer, checkpoint, device=self.args.device):
            safe_state.load_jsonable(self.lr_scheduler, os.path.join(checkpoint, "scheduler.json"))
        else:
            logger.warning("no optimizer.safetensors in %s: optimizer state starts fresh", checkpoint)

    def _save_scaler(self, output_dir):
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None and self.args.should_save:
            safe_state.save_jsonable(scaler, os.path.join(output_dir, "scaler.json"))

    def _load_scaler(self, checkpoint):
        scaler = getattr(self.accelerator, "scaler", None)
        if checkpoint is not None and scaler is not None:
            safe_state.load_jsonable(scaler, os.path.join(checkpoint, "scaler.json"))

    def _save_rng_state(self, output_dir):
        os.makedirs(output_dir, exist_ok=True)
        safe_state.save_rng(output_dir, self._rng_name())

    def _load_rng_state(self, checkpoint):
        if checkpoint is not None and not safe_state.load_rng(checkpoint, self._rng_name()):
            logger.warning("no %s.safetensors in %s: random state not restored", self._rng_name(), checkpoint)

    def restore_counters(self, checkpoint: str) -> None:
        path = os.path.join(checkpoint, f"adsc_counters_{self.args.process_index}.json")
        if os.path.isfile(path):
            with open(path) as fh:
                saved = json.load(fh)
            self.counters.update(saved["counters"])
            self.first_bad = tuple(saved["first_bad"]) if saved["first_bad"] else None
