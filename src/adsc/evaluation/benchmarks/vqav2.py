"""VQAv2: val scored locally with the server's metric; test-dev written as an EvalAI submission."""

from __future__ import annotations

import os

from ...files import write_json_atomic
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

    def __init__(self, root: str, split: str = "val", allow_outside_root: bool = False):
        super().__init__(root, allow_outside_root)
        if split not in FILES:
            raise DataError(f"vqav2: split must be one of {', '.join(FILES)}, got {split!r}")
        self.split = split
        qfile, folder, prefix = FILES[split]
        qpath = self.path("vqav2", qfile)
        questions = self.records(self.load_json("vqav2", qfile), qpath, "questions")
        self.answers: dict[str, list[str]] = {}
        if split == "val":
            apath = self.path("vqav2", ANNOTATIONS)
            for n, ann in enumerate(self.records(self.load_json("vqav2", ANNOTATIONS), apath, "annotations")):
                where = f"record {n}"
                qid = str(self.field(ann, "question_id", apath, where, (str, int)))
                answers = self.field(ann, "answers", apath, where, list)
                self.answers[qid] = [self.field(a, "answer", apath, f"{where} answer {i}") for i, a in enumerate(answers)]
                if not self.answers[qid]:
                    raise DataError(f"vqav2: {apath}: {where} has no answers")
        for n, q in enumerate(questions):
            qid = str(self.field(q, "question_id", qpath, f"record {n}", (str, int)))
            where = f"question {qid}"
            if split == "val" and qid not in self.answers:
                raise DataError(f"vqav2: question id {qid} has no entry in {ANNOTATIONS}")
            image_id = self.field(q, "image_id", qpath, where, (str, int))
            if not str(image_id).isdigit():
                raise DataError(f"vqav2: {qpath}: {where} has image_id {image_id!r}, expected a COCO image number")
            image = self.image("vqav2", folder, f"{prefix}_{int(image_id):012d}.jpg")
            self.samples.append(Sample(qid, image, self.field(q, "question", qpath, where) + SHORT_ANSWER))

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
            tpath = self.path("vqav2", TEST_ALL)
            ids = [str(self.field(q, "question_id", tpath, f"record {n}", (str, int)))
                   for n, q in enumerate(self.records(self.load_json("vqav2", TEST_ALL), tpath, "questions"))]
        bad = next((i for i in ids if not i.isdigit()), None)
        if bad is not None:
            raise DataError(f"vqav2: question id {bad!r} is no number; EvalAI needs the official numeric ids")
        rows = [{"question_id": int(i), "answer": evalai_normalize(predictions[i]) if i in predictions else ""} for i in ids]
        write_json_atomic(path, rows, indent=None)
        return len(rows)
