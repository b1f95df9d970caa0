"""VQAv2: val scored locally with the server's metric; test-dev written as an EvalAI submission."""

from __future__ import annotations

import json
import os

from ..normalize import evalai_normalize, vqav2_accuracy
from .base import SHORT_ANSWER, Benchmark, DataError, Sample

FILES = {
    "val": ("v2_OpenEnded_mscoco_val2014_questions.json", "val2014", "COCO_val2014"),
    "test-dev": ("v2_OpenEnded_mscoco_test-dev2015_questions.json", "test2015", "COCO_test2015"),
}
ANNOTATIONS = "v2_mscoco_val2014_annotations.json"
TEST_ALL = "v2_OpenEnded_mscoco_test2015_questions.json"


class VQAv2(Benchmark):
    name = "vqav2"
    files_help = (
        "vqav2/v2_OpenEnded_mscoco_val2014_questions.json + vqav2/v2_mscoco_val2014_annotations.json + "
        "vqav2/val2014/COCO_val2014_<id:012d>.jpg; for test-dev vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json "
        "(+ v2_OpenEnded_mscoco_test2015_questions.json for the full submission) and vqav2/test2015/"
    )

    def __init__(self, root: str, split: str = "val"):
        super().__init__(root)
        if split not in FILES:
            raise DataError(f"vqav2: split must be one of {', '.join(FILES)}, got {split!r}")
        self.split = split
        qfile, folder, prefix = FILES[split]
        questions = self.load_json("vqav2", qfile)["questions"]
        self.answers: dict[str, list[str]] = {}
        if split == "val":
            for ann in self.load_json("vqav2", ANNOTATIONS)["annotations"]:
                self.answers[str(ann["question_id"])] = [a["answer"] for a in ann["answers"]]
        for q in questions:
            qid = str(q["question_id"])
            if split == "val" and qid not in self.answers:
                raise DataError(f"vqav2: question id {qid} has no entry in {ANNOTATIONS}")
            image = self.image("vqav2", folder, f"{prefix}_{int(q['image_id']):012d}.jpg")
            self.samples.append(Sample(qid, image, q["question"] + SHORT_ANSWER))

    def score(self, predictions: dict[str, str]) -> dict:
        preds = self.predictions_for(predictions)
        if self.split != "val":
            return {"submission_only": True, "n": len(preds)}
        scores = [vqav2_accuracy(preds[s.id], self.answers[s.id]) for s in self.samples]
        return {"accuracy": 100.0 * sum(scores) / len(scores), "n": len(scores)}

    def write_submission(self, predictions: dict[str, str], path: str) -> int:
        """convert_vqav2_for_submission.py: every test2015 question, EvalAI-normalised, "" if absent.

        Returns the number of questions written. Without the full test2015 file only the
        test-dev questions are written (the server accepts that for the test-dev phase).
        """
        ids = [s.id for s in self.samples]
        if os.path.exists(self.path("vqav2", TEST_ALL)):
            ids = [str(q["question_id"]) for q in self.load_json("vqav2", TEST_ALL)["questions"]]
        rows = [{"question_id": int(i), "answer": evalai_normalize(predictions[i]) if i in predictions else ""} for i in ids]
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(rows, fh)
        return len(rows)
