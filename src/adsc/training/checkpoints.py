"""Checkpoint folders on disk: find the last complete one, rotate old ones, flush to disk.

A checkpoint is written under ``<output>/.staging/checkpoint-N``, marked complete, flushed and
renamed to ``<output>/checkpoint-N`` (one atomic rename). So ``checkpoint-N`` either holds a
whole checkpoint or does not exist; a crash mid-save leaves only litter in ``.staging``, which
the next run deletes. Old checkpoints are first renamed away, then deleted, for the same reason.
"""

from __future__ import annotations

import os
import re
import shutil

STAGING = ".staging"
MARKER = "adsc_checkpoint.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """(step, path) of complete checkpoints, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        m = _NAME.match(name)
        path = os.path.join(output_dir, name)
        if m and os.path.isfile(os.path.join(path, MARKER)):
            found.append((int(m.group(1)), path))
    return sorted(found)


def last_checkpoint(output_dir: str) -> str | None:
    found = complete_checkpoints(output_dir)
    return found[-1][1] if found else None


def clean_litter(output_dir: str) -> None:
    """Remove what a crash can leave: a half-written staging folder, half-deleted old checkpoints."""
    if not os.path.isdir(output_dir):
        return
    for name in os.listdir(output_dir):
        if name == STAGING or name.startswith(".trash-"):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def rotate(output_dir: str, keep: int | None) -> None:
    if not keep or keep <= 0:
        return
    for _, path in complete_checkpoints(output_dir)[:-keep]:
        trash = os.path.join(output_dir, ".trash-" + os.path.basename(path))
        os.rename(path, trash)  # atomic: the checkpoint disappears whole before its files do
        shutil.rmtree(trash, ignore_errors=True)


def fsync_tree(path: str, files: bool = True) -> None:
    """Flush a folder's files and the folder itself, so a rename cannot land before the data."""
    if files:
        for root, _, names in os.walk(path):
            for name in names:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
