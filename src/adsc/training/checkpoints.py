"""Checkpoint folders on disk: complete ones only, atomic rotation, nothing pickled left to load.

The stock Trainer writes ``<output>/checkpoint-N`` (model weights as safetensors,
``trainer_state.json``; with ``save_only_model`` no optimizer or RNG pickles: resume_state.py
writes those as safetensors + JSON). What adsc adds, through the public ``TrainerCallback.on_save``:
each process writes its own files (``writers``), then, once every process has, the folder is
flushed to disk and the marker ``adsc_checkpoint.json`` is written last. A
checkpoint counts as complete only with its marker, so a crash mid-save leaves a folder that is
never resumed from and is deleted by the next run. Old checkpoints are rotated here, after the
new one is complete, by an atomic rename before the delete; the Trainer's own rotation (which
deletes before the new checkpoint is marked) is turned off with ``save_total_limit=None``.
"""

from __future__ import annotations

import json
import os
import re
import shutil

from accelerate import PartialState
from transformers import TrainerCallback

STAGING = ".staging"  # where earlier adsc versions staged checkpoints: litter if found
MARKER = "adsc_checkpoint.json"
PICKLED_ARGS = "training_args.bin"  # the Trainer's torch.save of its arguments; never read back
ARGS_JSON = "training_args.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


class CompleteCheckpoints(TrainerCallback):
    """Marks each checkpoint complete once written, then rotates; each ``writers`` entry ``(folder)`` adds files."""

    def __init__(self, keep: int | None, writers=()):
        self.keep, self.writers = keep, tuple(writers)

    def on_step_end(self, args, state, control, **kwargs):
        # The same step saved again (a resume at the last step) must not leave a marked folder half rewritten
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if control.should_save and args.should_save and os.path.isfile(os.path.join(folder, MARKER)):
            os.remove(os.path.join(folder, MARKER))

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        for write in self.writers:  # on every process, before the marker: part of what "complete" means
            write(folder)
        PartialState().wait_for_everyone()  # every process has written its files
        if args.should_save:
            replace_pickled_args(folder, args)
            fsync_tree(folder)
            with open(os.path.join(folder, MARKER), "w") as fh:
                json.dump({"global_step": state.global_step, "world_size": args.world_size}, fh)
            fsync_tree(folder, files=False)
            fsync_tree(args.output_dir, files=False)
            rotate(args.output_dir, self.keep)
        PartialState().wait_for_everyone()


def replace_pickled_args(folder: str, args) -> None:
    """Trainer pickles its TrainingArguments beside the weights; keep a JSON copy instead (nothing to unpickle)."""
    pickled = os.path.join(folder, PICKLED_ARGS)
    if os.path.exists(pickled):
        os.remove(pickled)
    with open(os.path.join(folder, ARGS_JSON), "w") as fh:
        fh.write(args.to_json_string())


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


def drop_incomplete(output_dir: str) -> None:
    """Delete checkpoint folders without a marker: saves a crash cut short (never resumed from)."""
    if not os.path.isdir(output_dir):
        return
    for name in os.listdir(output_dir):
        path = os.path.join(output_dir, name)
        if _NAME.match(name) and not os.path.isfile(os.path.join(path, MARKER)):
            shutil.rmtree(path, ignore_errors=True)


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
