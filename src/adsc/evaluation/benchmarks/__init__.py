"""The six benchmarks and, in one place, the headline number of each (the paper's Table I)."""

from __future__ import annotations

from .base import MULTIPLE_CHOICE, SHORT_ANSWER, Benchmark, DataError, Sample
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


def load_benchmark(name: str, root: str, **options) -> Benchmark:
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name](root, **options)


__all__ = ["BENCHMARKS", "HEADLINES", "ORDER", "headline", "load_benchmark", "Benchmark", "Sample", "DataError",
           "SHORT_ANSWER", "MULTIPLE_CHOICE", "GQA", "MME", "POPE", "ScienceQA", "TextVQA", "VQAv2"]
