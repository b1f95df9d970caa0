"""ScienceQA-style multiple choice: a context (hint) that sets a rule, a question, 2-4 options.

The context alone never answers the question and the image alone does not either (except the
"which is present" template, which like many ScienceQA-IMG questions has no hint); the answer
is an option index, shown to the model as a letter.
"""

from __future__ import annotations

import numpy as np

from ..scene import Scene
from ..world import CATEGORIES, PLURALS, category_name
from .common import QA, article, pick

LETTERS = "ABCDE"
TEMPLATES = ("team", "points", "label", "present")


def _mc(kind, hint, question, options, correct, solution, rng, shuffle=True) -> QA:
    order = [int(i) for i in rng.permutation(len(options))] if shuffle else list(range(len(options)))
    choices = [options[i] for i in order]
    idx = choices.index(correct)
    return QA("sqa", kind, question, LETTERS[idx], {"hint": hint, "choices": choices, "answer_index": idx,
                                                     "solution": solution})


def _team(scene, rng):
    half = scene.spec.layout / 2
    objs = [o for o in scene.unique_objects() if o.col + 0.5 != half]  # never exactly on the border
    if not objs:
        return None
    o = pick(rng, objs, 1)[0]
    team = "Team A" if o.col + 0.5 < half else "Team B"
    side = "left" if team == "Team A" else "right"
    hint = ("Objects in the left half of the picture belong to Team A. "
            "Objects in the right half of the picture belong to Team B.")
    return _mc("team", hint, f"Which team does the {o.name} belong to?", ["Team A", "Team B"], team,
               f"The {o.name} is in the {side} half of the picture, so it belongs to {team}.", rng)


def _points(scene, rng):
    if not scene.objects:
        return None
    color = pick(rng, sorted({o.color for o in scene.objects}), 1)[0]
    shape = pick(rng, sorted({o.shape for o in scene.objects}), 1)[0]
    value = int(rng.integers(2, 6))
    group = scene.matching(shape=shape)
    total = sum(value if o.color == color else 1 for o in group)
    near = [v for v in range(max(1, total - 3), total + 4) if v != total]
    options = sorted([total] + pick(rng, near, 3))
    hint = f"In this game, each {color} object is worth {value} points. Every other object is worth 1 point."
    q = f"How many points are all the {PLURALS[shape]} worth together?"
    n_col = sum(o.color == color for o in group)
    sol = (f"There are {len(group)} {PLURALS[shape]}, {n_col} of them {color}: "
           f"{n_col} x {value} + {len(group) - n_col} x 1 = {total}.")
    # Numbers stay in ascending order, as ScienceQA lists them; the random distractors still
    # move the right answer between letters.
    return _mc("points", hint, q, [str(v) for v in options], str(total), sol, rng, shuffle=False)


def _label(scene, rng):
    labels = [t for t in scene.texts if t.under is not None]
    names = sorted({o.name for o in scene.unique_objects()})
    labels = [t for t in labels if scene.object(t.under).name in names]
    if not labels or len(names) < 2:
        return None
    t = pick(rng, labels, 1)[0]
    right = scene.object(t.under).name
    options = [right] + pick(rng, [n for n in names if n != right], 3)
    hint = "Some objects in the picture have a word written right under them."
    return _mc("label", hint, f'Which object has the word "{t.word}" written under it?', options, right,
               f'The word "{t.word}" is written right under the {right}.', rng)


def _present(scene, rng):
    present = sorted(scene.categories())
    if not present:
        return None
    right = pick(rng, present, 1)[0]
    # Hard negatives: absent categories sharing a colour or a shape with something in the picture.
    close = [c for c in CATEGORIES if c not in present and any(c[0] == p[0] or c[1] == p[1] for p in present)]
    wrong = pick(rng, close, 3)
    if not wrong:
        return None
    options = [category_name(c) for c in [right] + wrong]
    return _mc("present", "", "Which of these objects is in the picture?", options, category_name(right),
               f"The picture shows {article(category_name(right))}; none of the other options appears.", rng)


def sqa_questions(scene: Scene, rng: np.random.Generator) -> list[QA]:
    """One question per image, like ScienceQA; the first applicable template in a random order."""
    makers = {"team": _team, "points": _points, "label": _label, "present": _present}
    for name in pick(rng, list(TEMPLATES), len(TEMPLATES)):
        qa = makers[name](scene, rng)
        if qa is not None:
            return [qa]
    return []
