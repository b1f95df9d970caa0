"""POPE-style object existence: yes for present categories, no for negatives of three kinds.

As in POPE (Li et al. 2023): *random* negatives are absent categories drawn uniformly, *popular*
ones are the absent categories most frequent over the whole image set, *adversarial* ones the
absent categories that co-occur most often with the image's own categories. A category is a
(colour, shape) pair, the analogue of a COCO class.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..scene import Scene
from ..world import CATEGORIES, category_name
from .common import QA, article, pick

SPLITS = ("adversarial", "popular", "random")


@dataclass
class CategoryStats:
    """Per-category image counts and pairwise co-occurrence counts over a set of scenes."""

    freq: Counter = field(default_factory=Counter)
    cooc: Counter = field(default_factory=Counter)

    @classmethod
    def from_scenes(cls, scenes: list[Scene]) -> CategoryStats:
        stats = cls()
        for scene in scenes:
            cats = sorted(scene.categories())
            stats.freq.update(cats)
            stats.cooc.update((a, b) for a in cats for b in cats if a != b)
        return stats


def question(category: tuple[str, str]) -> str:
    return f"Is there {article(category_name(category))} in the image?"


def negatives(scene: Scene, stats: CategoryStats, split: str, k: int, rng: np.random.Generator) -> list:
    present = scene.categories()
    absent = [c for c in CATEGORIES if c not in present]
    if split == "random":
        return pick(rng, absent, k)
    if split == "popular":
        score = {c: stats.freq[c] for c in absent}
    elif split == "adversarial":
        score = {c: sum(stats.cooc[(p, c)] for p in present) for c in absent}
    else:
        raise ValueError(f"unknown POPE split {split!r}")
    # Ties break on the fixed category order, so the choice never depends on set iteration order.
    return sorted(absent, key=lambda c: (-score[c], CATEGORIES.index(c)))[:k]


def pope_questions(scene: Scene, stats: CategoryStats, rng: np.random.Generator, k: int = 3) -> list[QA]:
    """For each split: k present and k absent categories, alternating yes/no like POPE's files.

    The positives are the same in all three splits (POPE samples them once per image)."""
    positives = pick(rng, sorted(scene.categories()), k)
    out = []
    for split in SPLITS:
        negs = negatives(scene, stats, split, len(positives), rng)
        for pos, neg in zip(positives, negs):
            for cat, label in ((pos, "yes"), (neg, "no")):
                out.append(QA("pope", split, question(cat), label.capitalize(), {"split": split, "label": label,
                                                                                    "category": category_name(cat)}))
    return out
