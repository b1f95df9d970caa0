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

    def __init__(self, root: str):
        super().__init__(root)
        data = self.load_json("textvqa", ANNOTATIONS)["data"]
        self.answers = {str(a["question_id"]): a["answers"] for a in data}
        if os.path.exists(self.path("textvqa", QUESTION_FILE)):
            self._from_llava(data)
        else:
            self._from_rosetta(data)

    def _image(self, image_id: str) -> str:
        return self.image("textvqa", "train_images", f"{image_id}.jpg")

    def _from_llava(self, data: list[dict]) -> None:
        # eval_textvqa.py joins on (image id, lowercased question); the image file name carries
        # the image id whatever the question_id field holds.
        index = {(a["image_id"], a["question"].lower()): str(a["question_id"]) for a in data}
        for row in self.load_jsonl("textvqa", QUESTION_FILE):
            image_id = os.path.splitext(os.path.basename(row["image"]))[0]
            key = (image_id, question_of(row["text"]))
            if key not in index:
                raise DataError(f"textvqa: question {row['question_id']!r} ({key[1]!r}, image {image_id}) not in {ANNOTATIONS}")
            self.samples.append(Sample(index[key], self._image(image_id), row["text"]))

    def _from_rosetta(self, data: list[dict]) -> None:
        ocr = {r["image_id"]: r.get("ocr_tokens", []) for r in self.load_json("textvqa", ROSETTA)["data"]}
        for a in data:
            if a["image_id"] not in ocr:
                raise DataError(f"textvqa: no OCR tokens for image {a['image_id']} (question {a['question_id']})")
            text = a["question"]
            if ocr[a["image_id"]]:
                text += "\nReference OCR token: " + ", ".join(ocr[a["image_id"]])
            self.samples.append(Sample(str(a["question_id"]), self._image(a["image_id"]), text + SHORT_ANSWER))

    def score(self, predictions: dict[str, str]) -> dict:
        preds = self.predictions_for(predictions)
        scores = [textvqa_accuracy(preds[s.id], self.answers[s.id]) for s in self.samples]
        return {"accuracy": 100.0 * sum(scores) / len(scores), "n": len(scores)}
