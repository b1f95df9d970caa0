"""Writing result files so that a reader, or a rerun after a kill, never sees half of one; one
process per output folder (an exclusive ``flock`` the OS drops when the process dies)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile


def write_json_atomic(path: str | os.PathLike, data, indent: int | None = 2) -> None:
    """Write ``data`` as JSON to ``path``: a reader sees the old file or the new one, never half.

    The temporary file has a unique name beside ``path`` (two writers never share it), is synced
    to disk, then renamed over ``path`` in one step; on any failure it is removed.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=indent)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class LockHeld(ValueError):
    """Another process holds the lock file; ``holder`` is what it wrote there (its pid)."""

    def __init__(self, path: str, holder: str):
        super().__init__(f"{path} is held by pid {holder}")
        self.path, self.holder = path, holder


def take_lock(path: str) -> int:
    """Hold an exclusive lock on ``path`` (created if missing); returns its fd, closing it releases.

    The file records the holder's pid and host for the next process's refusal message. It is never
    deleted on release: a third process could then lock a new file while a second holds the old one.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 128).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LockHeld(path, holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode())
    return fd
