"""Checks of ``adsc eval`` settings, run before a model is loaded or a file is written.

Each failure is an :class:`EvaluationInputError` naming the argument and the fix (the CLI
prints it and exits with status 2).
"""

from __future__ import annotations

import os
import tempfile

import torch

from .benchmarks.base import EvaluationInputError

DTYPES = ("auto", "bf16", "bfloat16", "fp16", "float16", "fp32", "float32")
ATTN = ("eager", "sdpa", "flash_attention_2")


def _positive_int(value, flag: str, what: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EvaluationInputError(f"{flag} must be a whole number >= 1 ({what}), got {value!r}")


def check_run_settings(batch_size=8, limit=None, max_new_tokens=None, shard=None) -> None:
    _positive_int(batch_size, "--batch-size", "questions per generate call")
    _positive_int(limit, "--limit", "the first N questions of each benchmark; leave it out for all")
    _positive_int(max_new_tokens, "--max-new-tokens", "leave it out for the protocol's 128 (ScienceQA 1024)")
    if shard is not None:
        ok = (isinstance(shard, (tuple, list)) and len(shard) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                            for x in shard) and 0 <= shard[0] < shard[1])
        if not ok:
            raise EvaluationInputError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise EvaluationInputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def check_device(device: str | None) -> None:
    """A device torch can name and this machine has (cuda:N needs N GPUs)."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise EvaluationInputError(f"--device {device!r} is not a device name; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise EvaluationInputError(f"--device {device}: this machine has no CUDA GPU torch can use; "
                                       "use --device cpu (or install a CUDA build of torch)")
        if dev.index is not None and dev.index >= count:
            raise EvaluationInputError(f"--device {device}: only {count} GPU(s) here (cuda:0..cuda:{count - 1})")
    elif dev.type not in ("cpu", "mps", "xpu"):
        raise EvaluationInputError(f"--device {device}: use cpu, cuda or cuda:N")


def check_output_dir(output_dir: str) -> None:
    """The directory exists or can be made, and files can be created in it."""
    if not isinstance(output_dir, str) or not output_dir:
        raise EvaluationInputError("--output-dir must name a folder")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise EvaluationInputError(f"--output-dir {output_dir} is a file, not a folder; name a folder")
    try:
        os.makedirs(output_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as err:
        raise EvaluationInputError(f"--output-dir {output_dir} is not writable ({err.strerror}); "
                                   "choose a folder you can write to") from None


def check_budget(config, vision_tokens: int, exact: bool) -> None:
    """A budget is an average of vision tokens: it cannot exceed what an image has."""
    if config is None or config.budget is None:
        return
    if config.budget > config.vision_tokens:
        where = "this model's" if config.vision_tokens == vision_tokens else "the --vision-tokens"
        raise EvaluationInputError(
            f"--budget {config.budget:g} exceeds {where} {config.vision_tokens} vision tokens per image; choose a "
            f"budget below {config.vision_tokens} (the full model keeps all {config.vision_tokens})"
            + ("" if exact else ", or set --vision-tokens to the reference count the budget refers to")
        )
