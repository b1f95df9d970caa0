"""VQAv2-style counting with ten human-like answers.

The ten answers disagree the way counting answers do in VQAv2: the more objects, the more
annotators are off by one, and some write the number as a word ("two"), which the EvalAI
normalisation maps back to a digit. The true count always stays the strict majority answer,
so a model that counts right scores 1.0 (it matches at least 4 annotators).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..scene import Scene
from ..world import COLORS, PLURALS
from .common import QA, number_word, pick


def ten_answers(n: int, rng: np.random.Generator) -> list[dict]:
    p_right = max(0.55, 0.95 - 0.07 * n)
    counts = [n if rng.random() < p_right else max(0, n + int(rng.choice((-1, 1)))) for _ in range(10)]
    while True:  # keep the truth the unique most frequent answer
        tally = Counter(counts)
        rival, rival_n = max(((v, c) for v, c in tally.items() if v != n), key=lambda vc: (vc[1], -vc[0]),
                             default=(None, 0))
        if tally[n] > rival_n and tally[n] >= 4:
            break
        counts[counts.index(rival)] = n
    answers = []
    for i, c in enumerate(counts):
        text = number_word(c) if rng.random() < 0.1 else str(c)
        answers.append({"answer": text, "answer_confidence": "yes" if c == n else "maybe", "answer_id": i + 1})
    return answers


def candidates(scene: Scene) -> list[tuple[str, int]]:
    out = [("How many objects are there in the image?", len(scene.objects))]
    for shape in sorted({o.shape for o in scene.objects}):
        out.append((f"How many {PLURALS[shape]} are there?", len(scene.matching(shape=shape))))
    for color, shape in sorted(scene.categories()):
        out.append((f"How many {color} {PLURALS[shape]} are there?", len(scene.matching(color, shape))))
    for color in COLORS:  # includes colours with no object: VQAv2 has its share of "0"
        out.append((f"How many {color} objects are there?", len(scene.matching(color=color))))
    return out


def vqav2_questions(scene: Scene, rng: np.random.Generator, k: int = 3) -> list[QA]:
    cands = candidates(scene)
    nonzero = [c for c in cands if c[1] > 0]
    zero = [c for c in cands if c[1] == 0]
    chosen = pick(rng, nonzero, k)
    if zero and rng.random() < 0.1:  # occasional zero counts, as in VQAv2
        chosen[-1:] = pick(rng, zero, 1)
    return [QA("vqav2", "how many", q, str(n), {"answers": ten_answers(n, rng), "question_type": "how many",
                                                 "answer_type": "number"}) for q, n in chosen]
