"""Writing result files so that a reader, or a rerun after a kill, never sees half of one."""

from __future__ import annotations

import json
import os
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
