"""One trainer per output directory: an exclusive ``flock`` on ``<output>/.adsc_train.lock``.

Two trainers in one folder would write each other's checkpoints and interleave steps. The lock is
taken by the process of global rank 0 only (the ranks of one multi-GPU run share the folder by
design; the launcher ends them when rank 0 stops). The kernel drops the lock when its process
dies, SIGKILL included, so a killed run never leaves a stale lock behind. The file itself stays:
deleting a lock file on release lets a third process lock a new file while a second still holds
the old one. It holds the pid of the process that last took it, for the refusal message.
"""

from __future__ import annotations

import contextlib
import os

from ..files import LockHeld, take_lock

LOCK = ".adsc_train.lock"


class OutputDirBusy(ValueError):
    """Another trainer holds the output directory."""


@contextlib.contextmanager
def output_lock(out: str, take: bool = True):
    """Create ``out`` if needed and hold its lock for the ``with`` body (``take=False``: just create it).

    A folder this call created and that holds nothing but the lock when the body fails is removed
    again, so a refused or failed first run leaves no trace.
    """
    created = not os.path.isdir(out)
    path = os.path.join(out, LOCK)
    try:
        os.makedirs(out, exist_ok=True)
        fd = take_lock(path) if take else None
    except LockHeld as held:
        raise OutputDirBusy(
            f"another adsc train (pid {held.holder}) is writing {out}; wait for it to finish, "
            "stop it, or train into another --output-dir"
        ) from None
    except OSError as err:
        raise ValueError(f"cannot write the output directory {out}: {err.strerror or err}; "
                         "pass an --output-dir you can write to") from None
    try:
        try:
            yield
        except BaseException:
            if created and fd is not None and os.listdir(out) == [LOCK]:
                os.unlink(path)
                os.rmdir(out)
            raise
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock
