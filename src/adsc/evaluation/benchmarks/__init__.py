"""The six benchmarks and, in one place, the headline number of each (the paper's Table I)."""

from __future__ import annotations

import inspect
import os

from .base import (
    MULTIPLE_CHOICE,
    SHORT_ANSWER,
    Benchmark,
    DataError,
    EvaluationInputError,
    Sample,
)
from .gqa import GQA
from .mme import MME
from .pope import POPE
from .sqa import ScienceQA
from .textvqa import TextVQA
from .vqav2 import VQAv2

BENCHMARKS: dict[str, type[Benchmark]] = {
    "gqa": GQA, "mme": MME, "pope": POPE, "sqa": ScienceQA, "textvqa": TextVQA, "vqav2": VQAv2,
}

# name -> (column title, key of the headline in the benchmark's scores, what it is).
HEADLINES = {
    "gqa": ("GQA", "accuracy", "exact-match accuracy (%) over testdev-balanced questions"),
    "mme": ("MME", "perception", "perception score: sum over 10 subtasks of acc + acc+ (max 2000)"),
    "pope": ("POPE", "f1_mean", "F1 (%) averaged over the adversarial, popular and random splits"),
    "sqa": ("SQA", "img_accuracy", "accuracy (%) on the test questions with an image (ScienceQA-IMG)"),
    "textvqa": ("TextVQA", "accuracy", "VQA accuracy (%) on val, OCR tokens in the prompt"),
    "vqav2": ("VQAv2", "accuracy", "VQA accuracy (%) (val locally; test-dev via the EvalAI server)"),
}
ORDER = tuple(HEADLINES)  # Table I column order


def headline(name: str, scores: dict) -> float | None:
    """The benchmark's Table I number from its score dict (None for a submission-only run)."""
    return scores.get(HEADLINES[name][1])


def load_benchmark(name: str, root: str, allow_outside_root: bool = False, **options) -> Benchmark:
    """The benchmark's reader over ``root``; every bad input ends in a :class:`DataError`."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    cls = BENCHMARKS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "root", "allow_outside_root")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DataError(f"{name}: unknown option(s) {unknown}; {name} takes {accepted or 'none'}")
    if not isinstance(root, str) or not os.path.isdir(root):
        raise DataError(f"data root {root!r} is not a directory; pass the folder holding {', '.join(ORDER)} (see README)")
    try:
        return cls(root, allow_outside_root=allow_outside_root, **options)
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        # Every field a reader reads is checked on the way; this is the net for one missed.
        raise DataError(f"{name}: a file under {root} has an unexpected shape ({type(err).__name__}: {err}); "
                        f"expected the official files: {cls.files_help}") from err


__all__ = ["BENCHMARKS", "HEADLINES", "ORDER", "headline", "load_benchmark", "Benchmark", "Sample", "DataError",
           "EvaluationInputError",
           "SHORT_ANSWER", "MULTIPLE_CHOICE", "GQA", "MME", "POPE", "ScienceQA", "TextVQA", "VQAv2"]
