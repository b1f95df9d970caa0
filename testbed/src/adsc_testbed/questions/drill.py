"""Drills: many questions of one skill about one image in one multi-turn record.

Three skills, each its own training file (formats/instruct.py): existence (``drill_questions``),
reading (``reading_drill``) and counting (``counting_drill``). The existence drill is described
first; the other two follow its rules.

Training data only (pretrain.py: the optional drill stage, or copies in the QA mix). Why a separate file: a single-question
record trains the image look-up ("is the asked thing among the vision tokens?") with one answer
token per image forward, and a model trained from scratch on those barely learnt it in 1000
steps (docs/testbed.md, "Pretraining"). A drill asks ~10 questions per image: ten answer tokens
for one pass over the 144 vision tokens, the look-up trained ten times as densely.

Leaks are what made the benchmark families single-question (formats/instruct.py), so each turn
is drawn to carry no information about the next: yes or no by a fair coin per turn (not
alternating, not balanced per record), subjects drawn without replacement, negatives half the
time from the categories that co-occur with the image's (POPE's adversarial kind), half uniform.
What earlier answers still say about later ones is the scene's theme, a fact about the image.

Wordings are those of the evaluation files (POPE's and MME's existence / colour questions), with
the short-answer suffix, so the skill is trained in the form it is tested in.
"""

from __future__ import annotations

import numpy as np

from ..scene import Scene
from ..world import CATEGORIES, COLORS, PLURALS, SHAPES, category_name
from .common import QA, article, pick
from .pope import CategoryStats, negatives


def _subjects(scene: Scene) -> dict[str, tuple[list, list]]:
    """Per wording: (present subjects, absent subjects)."""
    cats = scene.categories()
    shapes = {o.shape for o in scene.objects}
    colors = {o.color for o in scene.objects}
    return {
        "category": ([c for c in CATEGORIES if c in cats], [c for c in CATEGORIES if c not in cats]),
        "shape": ([s for s in SHAPES if s in shapes], [s for s in SHAPES if s not in shapes]),
        "color": ([c for c in COLORS if c in colors], [c for c in COLORS if c not in colors]),
    }


def _ask(kind: str, subject, mme_wording: bool) -> str:
    if kind == "shape":
        return f"Is there a {subject} in this image?"
    if kind == "color":
        return f"Is there {article(subject)} object in this image?"
    where = "this image" if mme_wording else "the image"
    return f"Is there {article(category_name(subject))} in {where}?"


def drill_questions(scene: Scene, stats: CategoryStats, rng: np.random.Generator, turns: int = 10) -> list[QA]:
    """Up to ``turns`` existence questions, each yes or no by a fair coin, no subject asked twice."""
    pools = _subjects(scene)
    adversarial = negatives(scene, stats, "adversarial", 6, rng)  # the absent categories that co-occur most
    out = []
    for _ in range(turns):
        # categories are the hard, fine-grained kind (a conjunction decided by one patch): 2 turns in 3
        kind = "category" if rng.random() < 2 / 3 else ("shape", "color")[int(rng.integers(2))]
        present, absent = pools[kind]
        answer = "yes" if rng.random() < 0.5 else "no"
        pool = present if answer == "yes" else absent
        if not pool:
            continue
        ranked = [c for c in adversarial if c in pool]  # not asked yet
        if answer == "no" and kind == "category" and ranked and rng.random() < 0.5:
            subject = ranked[int(rng.integers(len(ranked)))]
        else:
            subject = pool[int(rng.integers(len(pool)))]
        pool.remove(subject)
        mme_wording = kind != "category" or rng.random() < 0.5
        out.append(QA("drill", kind, _ask(kind, subject, mme_wording), answer.capitalize()))
    return out


def reading_drill(scene: Scene, rng: np.random.Generator) -> list[QA]:
    """One turn per string: "What does the <colour> text say?" or, for a label under an object
    that can be named, "What word is written under the <colour> <shape>?" (a coin). No OCR
    reference line, unlike TextVQA's prompts: the word must come from the pixels. Each string is
    asked once, so an answer names no later one (strings differ, questions name other colours)."""
    uniq = {o.id for o in scene.unique_objects()}
    out = []
    for i in rng.permutation(len(scene.texts)):
        t = scene.texts[int(i)]
        if t.under is not None and t.under in uniq and rng.random() < 0.5:
            question = f"What word is written under the {scene.object(t.under).name}?"
        else:
            question = f"What does the {t.color} text say?"
        out.append(QA("drill_read", "read", question, t.word.lower()))
    return out


def counting_drill(scene: Scene, rng: np.random.Generator, turns: int = 8) -> list[QA]:
    """Up to ``turns`` counts of colours and shapes (VQAv2's wordings), zeros included. At most
    five of the six colours and five of the six shapes, so the answers never add up to a total
    that would give the last one away."""
    subjects = [("color", c) for c in pick(rng, list(COLORS), 5)] + [("shape", s) for s in pick(rng, list(SHAPES), 5)]
    out = []
    for i in rng.permutation(len(subjects))[:turns]:
        kind, subject = subjects[int(i)]
        if kind == "color":
            question, n = f"How many {subject} objects are there?", len(scene.matching(color=subject))
        else:
            question, n = f"How many {PLURALS[subject]} are there?", len(scene.matching(shape=subject))
        out.append(QA("drill_count", kind, question, str(n)))
    return out
