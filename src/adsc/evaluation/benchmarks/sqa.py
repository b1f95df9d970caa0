"""ScienceQA-IMG: LLaVA's model_vqa_science.py prompts + eval_science_qa.py letter extraction.

All test problems are run (4,241); the headline "IMG accuracy" counts the ones with an image
(2,017) -- eval_science_qa.py's ``is_multimodal`` ('<image>' in the prompt).
"""

from __future__ import annotations

import os
import re

from .base import MULTIPLE_CHOICE, Benchmark, DataError, Sample

OPTIONS = ("A", "B", "C", "D", "E")
_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")  # upstream: the final "." is any character


def sqa_letter(text: str) -> str | None:
    """Letter extraction in the LLaVA-1.5 order; None = failed (counted wrong).

    1. the whole output is one option letter; 2. it starts with "X. "; 3. "The answer is X."
    occurs exactly once. Which letters are valid for the problem is checked by the caller.
    """
    if text in OPTIONS:
        return text
    if len(text) >= 3 and text[0] in OPTIONS and text[1:3] == ". ":
        return text[0]
    found = _ANSWER_IS.findall(text)
    return found[0] if len(found) == 1 else None


def build_prompt(problem: dict) -> str:
    """The llava_test_CQM-A.json text: optional context line, question, lettered choices."""
    lines = []
    if (problem.get("hint") or "").strip():
        lines.append(f"Context: {problem['hint'].strip()}")
    lines.append(problem["question"])
    lines += [f"{OPTIONS[i]}. {c}" for i, c in enumerate(problem["choices"])]
    return "\n".join(lines)


class ScienceQA(Benchmark):
    name = "sqa"
    files_help = (
        "scienceqa/problems.json, scienceqa/pid_splits.json, scienceqa/images/test/<pid>/image.png, "
        "optionally scienceqa/llava_test_CQM-A.json (LLaVA's question file; its text is then used)"
    )

    def __init__(self, root: str, split: str = "test", allow_outside_root: bool = False):
        super().__init__(root, allow_outside_root)
        problems_path, splits_path = self.path("scienceqa", "problems.json"), self.path("scienceqa", "pid_splits.json")
        self.problems = self.load_json("scienceqa", "problems.json")
        splits = self.load_json("scienceqa", "pid_splits.json")
        if split not in splits:
            raise DataError(f"sqa: split {split!r} not in {splits_path} ({', '.join(map(str, splits))})")
        pids = self.field(splits, split, splits_path, "the top level", list)
        if not pids:
            raise DataError(f"sqa: split {split!r} of {splits_path} is empty; download the official file again")
        llava = {}
        if os.path.exists(self.path("scienceqa", "llava_test_CQM-A.json")):
            llava_path = self.path("scienceqa", "llava_test_CQM-A.json")
            for n, r in enumerate(self.load_json("scienceqa", "llava_test_CQM-A.json", kind=list)):
                llava[str(self.field(r, "id", llava_path, f"record {n}", (str, int)))] = r
        self.pids = [str(p) for p in pids]
        images = self.path("scienceqa", "images", split)
        for pid in self.pids:
            where = f"question {pid!r}"
            if pid not in self.problems:
                raise DataError(f"sqa: question id {pid!r} of split {split!r} not in {problems_path}")
            prob = self.problems[pid]
            choices = self.field(prob, "choices", problems_path, where, list)
            if not 2 <= len(choices) <= len(OPTIONS) or not all(isinstance(c, str) for c in choices):
                raise DataError(f"sqa: {problems_path}: {where} needs 2 to {len(OPTIONS)} choices (strings), "
                                f"has {choices!r}")
            answer = self.field(prob, "answer", problems_path, where, int)
            if not 0 <= answer < len(choices):
                raise DataError(f"sqa: {problems_path}: {where} has answer {answer}, not an index of its {len(choices)} choices")
            if pid in llava:
                # model_vqa_science.py: strip the <image> marker, the image goes first anyway.
                turns = self.field(llava[pid], "conversations", llava_path, where, list)
                first = turns[0] if turns else None
                text = self.field(first, "value", llava_path, f"{where} first turn").replace("<image>", "").strip()
                image_name = self.field(llava[pid], "image", llava_path, where, (str, type(None)), default=None)
            else:
                self.field(prob, "question", problems_path, where)
                self.field(prob, "hint", problems_path, where, (str, type(None)), default=None)
                text = build_prompt(prob)
                image_name = self.field(prob, "image", problems_path, where, (str, type(None)), default=None)
            image = self.image_in(images, os.path.join(pid, os.path.basename(image_name)), where) if image_name else None
            # model_vqa_science.py decodes up to 1024 new tokens (the others: 128).
            self.samples.append(Sample(pid, image, text + MULTIPLE_CHOICE, max_new_tokens=1024))
        if not any(s.image is not None for s in self.samples):  # the headline is over questions with an image
            raise DataError(f"sqa: split {split!r} of {splits_path} has no question with an image; "
                            "the IMG accuracy needs them")

    def score(self, predictions: dict[str, str]) -> dict:
        preds = self.predictions_for(predictions)
        correct = {}
        for s in self.samples:
            prob = self.problems[s.id]
            letter = sqa_letter(preds[s.id])
            valid = OPTIONS[: len(prob["choices"])]
            correct[s.id] = letter in valid and valid.index(letter) == prob["answer"]
        img = [s.id for s in self.samples if s.image is not None]
        if not img:
            raise DataError("sqa: no question with an image among the samples")
        return {
            "img_accuracy": 100.0 * sum(correct[i] for i in img) / len(img),
            "accuracy": 100.0 * sum(correct.values()) / len(correct),
            "n_img": len(img),
            "n": len(correct),
            "failed": sum(sqa_letter(preds[s.id]) is None for s in self.samples),
        }
