"""TextVQA val files as LLaVA-1.5 evaluates them (scripts/v1_5/eval/textvqa.sh, llava/eval/eval_textvqa.py).

textvqa/llava_textvqa_val_v051_ocr.jsonl  {"question_id": <image_id>, "image", "text", "category"}
    text = "<question>\\nReference OCR token: a, b, c\\nAnswer the question using a single word or phrase."
    (the OCR line is left out when the image has no tokens). eval_textvqa.py looks the annotation up
    by (question_id, first prompt line lower-cased), so question_id *is* the image id, as in LLaVA's file.
textvqa/TextVQA_0.5.1_val.json            {"dataset_type", "dataset_name", "dataset_version", "data": [...]}
textvqa/TextVQA_Rosetta_OCR_v0.2_val.json {"data": [{image_id, ocr_tokens, ocr_info}]}  (normalised boxes)
textvqa/train_images/<image_id>.png       (TextVQA's val images live in train_images/)
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import QA, SHORT_SUFFIX
from ..scene import Scene
from .io import save_image, write_json, write_jsonl


def image_id(index: int) -> str:
    return f"{index:016x}"  # TextVQA image ids are 16 hex digits


def prompt(qa: QA) -> str:
    tokens = qa.extra["ocr_tokens"]
    ocr = f"\nReference OCR token: {', '.join(tokens)}" if tokens else ""
    return qa.question + ocr + SHORT_SUFFIX


def _ocr_info(scene: Scene, tokens: list[str]) -> list[dict]:
    size = scene.spec.image_size
    texts = sorted(scene.texts, key=lambda t: (t.row, t.col))  # the order ocr_tokens uses
    return [{"word": tok, "bounding_box": {"top_left_x": t.bbox[0] / size, "top_left_y": t.bbox[1] / size,
                                           "width": (t.bbox[2] - t.bbox[0]) / size,
                                           "height": (t.bbox[3] - t.bbox[1]) / size,
                                           "rotation": 0, "roll": 0, "pitch": 0, "yaw": 0}}
            for tok, t in zip(tokens, texts)]


def write(root: Path, items: list[tuple[Scene, list[QA]]]) -> None:
    base = root / "textvqa"
    rows, data, ocr = [], [], []
    for scene, qas in items:
        save_image(scene, base / "train_images" / f"{scene.image_id}.png")
        tokens = qas[0].extra["ocr_tokens"]
        ocr.append({"image_id": scene.image_id, "ocr_tokens": tokens, "ocr_info": _ocr_info(scene, tokens)})
        for qa in qas:
            rows.append({"question_id": scene.image_id, "image": f"{scene.image_id}.png", "text": prompt(qa),
                         "category": "default"})
            data.append({"question": qa.question, "image_id": scene.image_id, "image_classes": [],
                         "flickr_original_url": "", "flickr_300k_url": "",
                         "image_width": scene.spec.image_size, "image_height": scene.spec.image_size,
                         "answers": qa.extra["answers"], "question_tokens": qa.question.lower().rstrip("?").split(),
                         "question_id": len(data), "set_name": "val"})
    head = {"dataset_type": "val", "dataset_name": "textvqa"}
    write_json(base / "TextVQA_0.5.1_val.json", {**head, "dataset_version": "0.5.1", "data": data})
    write_json(base / "TextVQA_Rosetta_OCR_v0.2_val.json", {**head, "dataset_version": "0.2", "data": ocr})
    write_jsonl(base / "llava_textvqa_val_v051_ocr.jsonl", rows)
