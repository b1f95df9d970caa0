"""Shared pieces of the question families: the QA record, spatial relations, phrasing helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..scene import Obj, Scene
from ..world import NUMBER_WORDS, PLURALS

# LLaVA-1.5 prompt suffixes (llava/eval question files; EVAL_PROTOCOL.md "Shared setup").
SHORT_SUFFIX = "\nAnswer the question using a single word or phrase."
MC_SUFFIX = "\nAnswer with the option's letter from the given choices directly."


@dataclass
class QA:
    """One question about one scene, with its answer computed from the annotation.

    ``answer`` is what a perfect model says (the training target); ``extra`` carries what a
    benchmark's files need besides it (POPE split, GQA types, the ten VQA answers, choices...).
    """

    family: str
    kind: str
    question: str
    answer: str
    extra: dict = field(default_factory=dict)


# Relations compare layout cells, strictly: two objects in the same column are neither left nor
# right of each other, so every "left of" the generator asserts is visible at cell resolution.
RELATIONS = {
    "to the left of": lambda a, b: a.col < b.col,
    "to the right of": lambda a, b: a.col > b.col,
    "above": lambda a, b: a.row < b.row,
    "below": lambda a, b: a.row > b.row,
}


def holds(rel: str, a: Obj, b: Obj) -> bool:
    return RELATIONS[rel](a, b)


def article(phrase: str) -> str:
    """ "a red star", "an orange star". """
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def plural(shape: str, n: int) -> str:
    return shape if n == 1 else PLURALS[shape]


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def pick(rng: np.random.Generator, items: list, k: int) -> list:
    """k distinct items in a seeded random order (all of them when there are fewer)."""
    if not items:
        return []
    order = rng.permutation(len(items))[: min(k, len(items))]
    return [items[int(i)] for i in order]


def referable_pairs(scene: Scene) -> list[tuple[Obj, Obj]]:
    """Ordered pairs of distinct objects that "the <colour> <shape>" names unambiguously."""
    uniq = scene.unique_objects()
    return [(a, b) for a in uniq for b in uniq if a.id != b.id]
