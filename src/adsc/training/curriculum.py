"""The budget curriculum: which vision-token budget each optimizer step trains under.

The phase is a pure function of the optimizer step (``state.global_step``), so a run resumed
from a checkpoint lands in the right phase with no extra state to save.
"""

from __future__ import annotations

import logging

from transformers import TrainerCallback

from ..config import CompressionConfig

logger = logging.getLogger("adsc.training")


def phase_starts(total_steps: int, phases: int, fractions=None, steps=None) -> list[int]:
    """First optimizer step (0-based) of every phase. Default: equal shares, rounded to steps."""
    if steps is not None:
        if sum(steps) != total_steps:
            raise ValueError(f"phase_steps {list(steps)} add up to {sum(steps)}, but the run has {total_steps} steps")
        starts, at = [], 0
        for n in steps:
            starts.append(at)
            at += n
        return starts
    fractions = fractions or [1.0 / phases] * phases
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"phase_fractions must be non-negative and sum to 1, got {list(fractions)}")
    starts, acc = [], 0.0
    for f in fractions:
        starts.append(int(round(acc * total_steps)))
        acc += f
    return starts


def phase_of(step: int, starts: list[int]) -> int:
    """The last phase whose start is <= step (empty phases are passed over)."""
    phase = 0
    for i, s in enumerate(starts):
        if s <= step:
            phase = i
    return phase


class CurriculumCallback(TrainerCallback):
    """Sets the compression handle's budget before each optimizer step; logs every change.

    ``history`` keeps (step, phase, budget) for each phase entered in this process, and
    ``seen`` the budget of every step (read by the tests and the run summary).
    """

    def __init__(self, handle, base: CompressionConfig, budgets: list[float], fractions=None, steps=None):
        self.handle, self.base, self.budgets = handle, base, list(budgets)
        self.fractions, self.steps = fractions, steps
        self.starts: list[int] = []
        self.phase: int | None = None
        self.history: list[tuple[int, int, float]] = []
        self.seen: dict[int, float] = {}
        self.configs = [base.replace(budget=b) for b in self.budgets]

    def check(self, num_layers: int) -> None:
        """Fail before training if any phase's budget cannot be reached with these layers."""
        for cfg in self.configs:
            cfg.schedule(num_layers)

    def on_train_begin(self, args, state, control, **kwargs):
        self.starts = phase_starts(state.max_steps, len(self.budgets), self.fractions, self.steps)
        logger.info("curriculum: phases start at optimizer steps %s with budgets %s", self.starts, self.budgets)

    def on_step_begin(self, args, state, control, **kwargs):
        step = state.global_step
        phase = phase_of(step, self.starts)
        if phase != self.phase:
            self.handle.set_config(self.configs[phase])
            self.phase = phase
            self.history.append((step, phase, self.budgets[phase]))
            sched = self.handle.schedule
            logger.info(
                "curriculum phase %d/%d from step %d: vision-token budget %.2f (keep counts %s)",
                phase + 1, len(self.budgets), step, self.budgets[phase], list(sched.keep_counts),
            )
        self.seen[step] = self.budgets[phase]
