"""Object listings: the captions of the alignment stage (training data only; no benchmark asks this).

LLaVA-1.5 aligns its projector on image captions (stage 1, 558K captions) before instruction
tuning. Our model, trained from scratch, needs that even more: a yes/no question only becomes
answerable through a *product* of question and image (is the asked category among the present
ones?), which a random language model barely computes, so question answering alone leaves it on
the language prior (measured: probe.py, docs/testbed.md). A listing is a function of the image
alone: its gradient reaches the projector and the attention over vision tokens from the first step.

The listing is content only, in the fixed category order (world.CATEGORIES) with counts:
"one blue circle, two red stars". Filtered listings ("What red objects are in the image?",
"What stars are in the image?") bridge to the questions: every answer word depends on the
question *and* the image, the product a yes/no answer needs, but with a dense target instead of one
bit. Filters name only a colour or shape that is present. Only words the other families use.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..scene import Scene
from ..world import CATEGORIES, PLURALS
from .common import QA, number_word, pick, plural

PROMPT = "What objects are in the image?"


def listing(scene: Scene) -> str:
    return listing_of(scene.objects)


def listing_of(objects) -> str:
    counts = Counter(o.category for o in objects)
    return ", ".join(f"{number_word(counts[c])} {c[0]} {plural(c[1], counts[c])}" for c in CATEGORIES if counts[c])


def caption_questions(scene: Scene, rng: np.random.Generator | None = None) -> list[QA]:
    """The full listing; with ``rng``, also one colour-filtered and one shape-filtered listing."""
    if not scene.objects:
        return []
    out = [QA("caption", "objects", PROMPT, listing(scene))]
    if rng is not None:
        color = pick(rng, sorted({o.color for o in scene.objects}), 1)[0]
        shape = pick(rng, sorted({o.shape for o in scene.objects}), 1)[0]
        out.append(QA("caption", "color", f"What {color} objects are in the image?",
                      listing_of(scene.matching(color=color))))
        out.append(QA("caption", "shape", f"What {PLURALS[shape]} are in the image?",
                      listing_of(scene.matching(shape=shape))))
    return out
