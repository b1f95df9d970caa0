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
    if problem.get("hint", "").strip():
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

    def __init__(self, root: str, split: str = "test"):
        super().__init__(root)
        self.problems = self.load_json("scienceqa", "problems.json")
        splits = self.load_json("scienceqa", "pid_splits.json")
        if split not in splits:
            raise DataError(f"sqa: split {split!r} not in pid_splits.json ({', '.join(splits)})")
        llava = {}
        if os.path.exists(self.path("scienceqa", "llava_test_CQM-A.json")):
            llava = {str(r["id"]): r for r in self.load_json("scienceqa", "llava_test_CQM-A.json")}
        self.pids = [str(p) for p in splits[split]]
        for pid in self.pids:
            if pid not in self.problems:
                raise DataError(f"sqa: question id {pid!r} of split {split!r} not in problems.json")
            prob = self.problems[pid]
            if len(prob["choices"]) > len(OPTIONS):
                raise DataError(f"sqa: question {pid!r} has more than {len(OPTIONS)} choices")
            if pid in llava:
                # model_vqa_science.py: strip the <image> marker, the image goes first anyway.
                text = llava[pid]["conversations"][0]["value"].replace("<image>", "").strip()
                image_name = llava[pid].get("image")
            else:
                text, image_name = build_prompt(prob), prob.get("image")
            image = self.path("scienceqa", "images", split, pid, os.path.basename(image_name)) if image_name else None
            # model_vqa_science.py decodes up to 1024 new tokens (the others: 128).
            self.samples.append(Sample(pid, image, text + MULTIPLE_CHOICE, max_new_tokens=1024))

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
