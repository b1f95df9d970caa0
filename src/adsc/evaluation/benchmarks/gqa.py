"""GQA testdev-balanced: exact match, as LLaVA's convert_gqa_for_eval.py + the official eval.py."""

from __future__ import annotations

import os

from .base import SHORT_ANSWER, Benchmark, DataError, Sample


def gqa_answer(text: str) -> str:
    # convert_gqa_for_eval.py: text.rstrip('.').lower() -- no other normalisation.
    return text.rstrip(".").lower()


class GQA(Benchmark):
    name = "gqa"
    files_help = "gqa/testdev_balanced_questions.json and gqa/images/<imageId>.jpg (or LLaVA's gqa/data/... layout)"

    def __init__(self, root: str, questions: str = "testdev_balanced_questions.json", allow_outside_root: bool = False):
        super().__init__(root, allow_outside_root)
        # LLaVA's playground keeps GQA one level down, in gqa/data/
        flat = os.path.exists(self.path("gqa", questions)) or not os.path.isdir(self.path("gqa", "data"))
        base = ("gqa",) if flat else ("gqa", "data")
        data = self.load_json(*base, questions)
        path = self.path(*base, questions)
        self.answers: dict[str, str] = {}
        self.balanced: set[str] = set()
        for qid, q in data.items():
            where = f"question {qid!r}"
            image_id = self.field(q, "imageId", path, where, (str, int))
            text = self.field(q, "question", path, where)
            self.samples.append(Sample(str(qid), self.image_in(self.path(*base, "images"), f"{image_id}.jpg", where),
                                       text + SHORT_ANSWER))
            self.answers[str(qid)] = self.field(q, "answer", path, where, str, default=None)
            if self.field(q, "isBalanced", path, where, bool, default=False):
                self.balanced.add(str(qid))
        if not self.balanced:  # the headline counts balanced questions only
            raise DataError(f"gqa: {path} has no balanced question (isBalanced); the headline needs them: "
                            "use the official testdev_balanced_questions.json")

    def score(self, predictions: dict[str, str]) -> dict:
        """Accuracy over the balanced questions; unbalanced ones are run but do not count."""
        preds = self.predictions_for(predictions)
        scored = [s.id for s in self.samples if s.id in self.balanced]
        if not scored:
            raise DataError("gqa: no balanced question (isBalanced) among the samples")
        for qid in scored:
            if self.answers[qid] is None:
                raise DataError(f"gqa: question {qid!r} has no 'answer' (a test split cannot be scored locally)")
        correct = sum(gqa_answer(preds[q]) == self.answers[q] for q in scored)
        return {"accuracy": 100.0 * correct / len(scored), "correct": correct, "n": len(scored)}
