"""MME-style yes/no pairs: per image one question whose answer is Yes and one whose answer is No.

Five perception subtasks mirror MME's: existence, count, position, color, OCR. The "no" question
always differs from the "yes" one in a single detail (one more object, the opposite side, another
colour of the same shape, a word one letter away), so only looking closely separates them.
"""

from __future__ import annotations

import numpy as np

from ..scene import Scene
from ..world import COLORS, SHAPES
from .common import QA, article, number_word, pick, plural, referable_pairs

SUBTASKS = ("existence", "count", "position", "color", "OCR")
# MME's wording of the two sides of a relation ("Is the cat on the left of the dog?").
SIDES = {"left": "on the left of", "right": "on the right of", "above": "above", "below": "below"}


def _existence(scene, rng):
    present = sorted({o.shape for o in scene.objects})
    absent = [s for s in SHAPES if s not in present]
    if present and absent:
        yes, no = pick(rng, present, 1)[0], pick(rng, absent, 1)[0]
        return f"Is there a {yes} in this image?", f"Is there a {no} in this image?"
    colors = sorted({o.color for o in scene.objects})
    missing = [c for c in COLORS if c not in colors]
    if not (colors and missing):
        return None
    yes, no = pick(rng, colors, 1)[0], pick(rng, missing, 1)[0]
    return f"Is there {article(yes)} object in this image?", f"Is there {article(no)} object in this image?"


def _count(scene, rng):
    groups = [(None, s) for s in sorted({o.shape for o in scene.objects})]
    groups += sorted({(o.color, o.shape) for o in scene.objects})
    if not groups:
        return None
    color, shape = pick(rng, groups, 1)[0]
    n = len(scene.matching(color=color, shape=shape))
    wrong = n - 1 if n > 1 and rng.random() < 0.5 else n + 1

    def ask(m):
        what = plural(shape, m) if color is None else f"{color} {plural(shape, m)}"
        return f"Is there a total of {number_word(m)} {what} in this image?"
    return ask(n), ask(wrong)


def _position(scene, rng):
    options = []
    for a, b in referable_pairs(scene):
        if a.col != b.col:
            options.append((a, b, "left" if a.col < b.col else "right", "right" if a.col < b.col else "left"))
        if a.row != b.row:
            options.append((a, b, "above" if a.row < b.row else "below", "below" if a.row < b.row else "above"))
    if not options:
        return None
    a, b, true, false = pick(rng, options, 1)[0]
    return (f"Is the {a.name} {SIDES[true]} the {b.name} in this image?",
            f"Is the {a.name} {SIDES[false]} the {b.name} in this image?")


def _color(scene, rng):
    # "Is there a red square" (yes) vs "Is there a blue square" (no): the shape is present either
    # way, so only the colour bound to it decides.
    options = [(o.category, c) for o in scene.objects for c in COLORS if (c, o.shape) not in scene.categories()]
    if not options:
        return None
    (color, shape), other = pick(rng, sorted(set(options)), 1)[0]
    return f"Is there {article(color)} {shape} in this image?", f"Is there {article(other)} {shape} in this image?"


def near_miss(word: str, vocab: tuple[str, ...], rng: np.random.Generator) -> str:
    """The vocabulary word closest to ``word`` (same length, fewest differing characters)."""
    def dist(w):
        return (len(w) != len(word), sum(x != y for x, y in zip(w, word)) + abs(len(w) - len(word)))
    others = sorted(w for w in vocab if w != word)
    best = min(dist(w) for w in others)
    return pick(rng, [w for w in others if dist(w) == best], 1)[0]


def _ocr(scene, rng, vocab):
    if not scene.texts:
        return None
    t = pick(rng, scene.texts, 1)[0]
    wrong = near_miss(t.word, vocab, rng)
    return (f'Is the {t.color} text in this image "{t.word}"?', f'Is the {t.color} text in this image "{wrong}"?')


def mme_questions(scene: Scene, subtask: str, rng: np.random.Generator, vocab: tuple[str, ...]) -> list[QA]:
    """Two QAs (Yes first, then No, as in MME's files), or [] when the scene cannot carry the subtask."""
    makers = {"existence": _existence, "count": _count, "position": _position, "color": _color,
              "OCR": lambda s, r: _ocr(s, r, vocab)}
    pair = makers[subtask](scene, rng)
    if pair is None:
        return []
    return [QA("mme", subtask, pair[0], "Yes"), QA("mme", subtask, pair[1], "No")]
