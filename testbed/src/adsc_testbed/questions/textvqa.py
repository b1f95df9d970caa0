"""TextVQA-style reading questions, with simulated OCR tokens and ten answers.

The OCR tokens play Rosetta's part in LLaVA's prompt ("Reference OCR token: ..."): every string in
the image, in reading order, some with one wrong character. They tell the model *which* words are
there but not *where*; the question names a colour or a neighbouring object, so the model must
still find the string in the image (and read it when the OCR token is wrong).
"""

from __future__ import annotations

import numpy as np

from ..scene import Scene
from .common import QA, pick

# Characters an OCR engine confuses; other characters get a random capital letter.
CONFUSIONS = {"O": "0", "0": "O", "I": "1", "1": "I", "S": "5", "5": "S", "E": "F", "B": "8", "8": "B", "Z": "2"}


def ocr_tokens(scene: Scene, rng: np.random.Generator, noise: float) -> list[str]:
    tokens = []
    for t in sorted(scene.texts, key=lambda t: (t.row, t.col)):
        word = t.word
        if rng.random() < noise:
            i = int(rng.integers(len(word)))
            sub = CONFUSIONS.get(word[i]) or chr(ord("A") + int(rng.integers(26)))
            word = word[:i] + sub + word[i + 1:]
        tokens.append(word)
    return tokens


def ten_answers(word: str, tokens: list[str], rng: np.random.Generator) -> list[str]:
    """Mostly the word in lower case; some annotators keep the capitals (same after normalisation),
    an occasional one copies a wrong OCR token or gives up ("unanswerable")."""
    answers = []
    wrong = [t for t in tokens if t.lower() != word.lower() and len(t) == len(word)]
    for _ in range(10):
        u = rng.random()
        if u < 0.7:
            answers.append(word.lower())
        elif u < 0.9:
            answers.append(word)
        elif u < 0.95 and wrong:
            answers.append(pick(rng, wrong, 1)[0].lower())
        else:
            answers.append("unanswerable")
    while sum(a.lower() == word.lower() for a in answers) < 7:  # the truth stays a clear majority
        answers[next(i for i, a in enumerate(answers) if a.lower() != word.lower())] = word.lower()
    return answers


def candidates(scene: Scene) -> list[tuple[str, str]]:
    out = [(f"What does the {t.color} text say?", t.word) for t in scene.texts]
    uniq = {o.id for o in scene.unique_objects()}
    for t in scene.texts:
        if t.under is not None and t.under in uniq:
            out.append((f"What word is written under the {scene.object(t.under).name}?", t.word))
    return out


def textvqa_questions(scene: Scene, rng: np.random.Generator, noise: float, k: int = 2) -> list[QA]:
    cands = candidates(scene)
    if not cands:
        return []
    tokens = ocr_tokens(scene, rng, noise)
    return [QA("textvqa", "read", q, word.lower(), {"answers": ten_answers(word, tokens, rng), "ocr_tokens": tokens})
            for q, word in pick(rng, cands, k)]
