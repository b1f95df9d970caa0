"""TextVQA val: LLaVA's llava_textvqa_val_v051_ocr.jsonl prompts + eval_textvqa.py (m4c accuracy)."""

from __future__ import annotations

import os

from ..normalize import textvqa_accuracy
from .base import SHORT_ANSWER, Benchmark, DataError, Sample

QUESTION_FILE = "llava_textvqa_val_v051_ocr.jsonl"
ANNOTATIONS = "TextVQA_0.5.1_val.json"
ROSETTA = "TextVQA_Rosetta_OCR_v0.2_val.json"


def question_of(prompt: str) -> str:
    """eval_textvqa.py prompt_processor: the question line of a LLaVA prompt, lowercased."""
    lines = prompt.split("\n")
    if "Reference OCR token: " in prompt and len(lines) == 3:
        return (lines[1] if prompt.startswith("Reference OCR token:") else lines[0]).lower()
    if len(lines) == 2:
        return lines[0].lower()
    raise DataError(f"textvqa: cannot find the question in prompt {prompt!r}")


class TextVQA(Benchmark):
    name = "textvqa"
    files_help = (
        f"textvqa/{ANNOTATIONS}, textvqa/train_images/<image_id>.jpg, and textvqa/{QUESTION_FILE} "
        f"(LLaVA's prompts with OCR tokens) or textvqa/{ROSETTA} (OCR tokens to build them)"
    )

    def __init__(self, root: str, allow_outside_root: bool = False):
        super().__init__(root, allow_outside_root)
        self.annotations = self.path("textvqa", ANNOTATIONS)
        data = self.records(self.load_json("textvqa", ANNOTATIONS), self.annotations, "data")
        self.answers = {}
        for n, a in enumerate(data):
            where = f"record {n}"
            qid = str(self.field(a, "question_id", self.annotations, where, (str, int)))
            self.field(a, "image_id", self.annotations, where, (str, int))
            self.field(a, "question", self.annotations, where)
            answers = self.field(a, "answers", self.annotations, where, list)
            if not answers or not all(isinstance(x, str) for x in answers):
                raise DataError(f"textvqa: {self.annotations}: {where} needs a non-empty list of answer strings")
            self.answers[qid] = answers
        if os.path.exists(self.path("textvqa", QUESTION_FILE)):
            self._from_llava(data)
        else:
            self._from_rosetta(data)

    def _image(self, image_id, where: str) -> str:
        return self.image_in(self.path("textvqa", "train_images"), f"{image_id}.jpg", where)

    def _from_llava(self, data: list[dict]) -> None:
        # eval_textvqa.py joins on (image id, lowercased question); the image file name carries
        # the image id whatever the question_id field holds.
        path = self.path("textvqa", QUESTION_FILE)
        index = {(str(a["image_id"]), a["question"].lower()): str(a["question_id"]) for a in data}
        rows = self.load_jsonl("textvqa", QUESTION_FILE)
        if not rows:
            raise DataError(f"textvqa: {path} has no questions; download LLaVA's file again")
        for n, row in enumerate(rows):
            where = f"record {n}"
            image_id = os.path.splitext(os.path.basename(self.field(row, "image", path, where)))[0]
            text = self.field(row, "text", path, where)
            key = (image_id, question_of(text))
            if key not in index:
                raise DataError(f"textvqa: question {row.get('question_id')!r} ({key[1]!r}, image {image_id}) "
                                f"not in {ANNOTATIONS}")
            self.samples.append(Sample(index[key], self._image(image_id, where), text))

    def _from_rosetta(self, data: list[dict]) -> None:
        path = self.path("textvqa", ROSETTA)
        ocr = {}
        for n, r in enumerate(self.records(self.load_json("textvqa", ROSETTA), path, "data")):
            tokens = self.field(r, "ocr_tokens", path, f"record {n}", list, default=[])
            ocr[str(self.field(r, "image_id", path, f"record {n}", (str, int)))] = [str(t) for t in tokens]
        for a in data:
            image_id = str(a["image_id"])
            if image_id not in ocr:
                raise DataError(f"textvqa: no OCR tokens for image {image_id} (question {a['question_id']}) in {path}")
            text = a["question"]
            if ocr[image_id]:
                text += "\nReference OCR token: " + ", ".join(ocr[image_id])
            self.samples.append(Sample(str(a["question_id"]), self._image(image_id, f"question {a['question_id']!r}"),
                                       text + SHORT_ANSWER))

    def score(self, predictions: dict[str, str]) -> dict:
        preds = self.predictions_for(predictions)
        scores = [textvqa_accuracy(preds[s.id], self.answers[s.id]) for s in self.samples]
        return {"accuracy": 100.0 * sum(scores) / len(scores), "n": len(scores)}
