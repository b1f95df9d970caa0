"""Output-directory safety: one run per directory (atomic writes: :func:`adsc.files.write_json_atomic`).

Two ``adsc eval`` processes on one output directory would generate every question twice and
interleave prediction lines, so each run holds an exclusive ``flock`` on a lock file there
(one per shard: shards of one run write separate files and may run side by side). The OS
drops the lock when the process dies, so a kill never leaves a stale lock behind.
"""

from __future__ import annotations

import os

from ..files import LockHeld, take_lock, write_json_atomic
from .benchmarks.base import EvaluationInputError

__all__ = ["LOCK_NAME", "OutputLock", "lock_name", "write_json_atomic"]  # the writer lives in adsc.files

LOCK_NAME = ".adsc_eval.lock"


def lock_name(shard: tuple[int, int] | None = None) -> str:
    if shard and shard[1] > 1:
        return f".adsc_eval.shard{shard[0]}of{shard[1]}.lock"
    return LOCK_NAME


class OutputLock:
    """``with OutputLock(dir, shard):`` -- refuse when another process holds this directory (or shard)."""

    def __init__(self, output_dir: str, shard: tuple[int, int] | None = None):
        self.path = os.path.join(output_dir, lock_name(shard))
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        try:
            self.fd = take_lock(self.path)
        except LockHeld as held:
            raise EvaluationInputError(
                f"{os.path.dirname(self.path)} is in use by another adsc eval (pid {held.holder}, lock {self.path}); "
                "wait for it to finish, or use another --output-dir"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None
