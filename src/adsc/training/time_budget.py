"""Train for a span of wall-clock time rather than a number of steps.

A fixed step count sized for one machine wastes a lease on a faster one and is cut short,
learning rate still high, on a slower one. ``TimeBudget`` instead spreads the learning-rate
schedule over the time: linear warm-up over the first share, then a cosine to zero as the
clock runs out, and training stops there (the run's output is saved as after any last step).
Use it with ``lr_scheduler="constant"`` (the Trainer's scheduler then keeps every group at its
base rate and this callback scales it); ``max_steps`` stays an upper bound.

The time spent is written next to each checkpoint, so a killed run resumes on the schedule
where it stopped instead of warming up again; a resume with another budget is refused. One process
only: ranks of a multi-GPU run would each read their own clock and could stop at different steps.
"""

from __future__ import annotations

import json
import math
import os
import time

from transformers import TrainerCallback

SPENT = "time_budget.json"


def time_scale(frac: float, warmup: float) -> float:
    """Learning-rate multiplier after ``frac`` of the time: linear warm-up, then cosine to zero."""
    if frac < warmup:
        return frac / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (frac - warmup) / (1.0 - warmup))))


class TimeBudget(TrainerCallback):
    def __init__(self, seconds: float, warmup: float = 0.03):
        if seconds <= 0 or not 0.0 <= warmup < 1.0:
            raise ValueError(f"need seconds > 0 and 0 <= warmup < 1, got {seconds}, {warmup}")
        self.seconds, self.warmup = float(seconds), warmup
        self.spent_before, self.start = 0.0, None

    def spent(self) -> float:
        return self.spent_before + (time.time() - self.start if self.start is not None else 0.0)

    def _set_rates(self, optimizer) -> float:
        frac = self.spent() / self.seconds
        scale = time_scale(frac, self.warmup)
        for group in optimizer.param_groups:
            group["lr"] = group.get("initial_lr", group["lr"]) * scale  # initial_lr: the base the scheduler keeps
        return frac

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        if getattr(args, "world_size", 1) > 1:
            # each process would read its own clock and could stop at another step than the rest: a hang
            raise ValueError("TimeBudget runs in a single process only; under several processes give max_steps instead")
        # a resumed run finds the time of its last checkpoint beside it (Trainer restored state already)
        ckpt = os.path.join(args.output_dir, f"checkpoint-{state.global_step}", SPENT)
        if state.global_step and os.path.isfile(ckpt):
            with open(ckpt) as fh:
                saved = json.load(fh)
            if saved.get("budget", self.seconds) != self.seconds:
                # another budget is another learning-rate schedule: a resume would mix two runs
                raise ValueError(
                    f"{args.output_dir} holds a run with a time budget of {saved['budget']:g} s, not {self.seconds:g} s; "
                    "resume with the original budget, or train into a new output folder"
                )
            self.spent_before = saved["seconds"]
        self.start = time.time()
        self._set_rates(optimizer)  # the first step already runs on the schedule

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        # runs after the Trainer's constant scheduler reset the rates: this sets the next step's
        if self._set_rates(optimizer) >= 1.0:
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(folder):
            with open(os.path.join(folder, SPENT), "w") as fh:
                json.dump({"seconds": self.spent(), "budget": self.seconds}, fh)
