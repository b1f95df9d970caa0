"""POPE files (LLaVA-1.5: scripts/v1_5/eval/pope.sh, llava/eval/eval_pope.py).

pope/coco/coco_pope_<split>.json  one JSON per line {question_id, image, text, label}; ids restart at 1
pope/llava_pope_test.jsonl         {question_id, image, text + suffix, category: <split>}; ids unique
pope/val2014/COCO_val2014_<id>.png

eval_pope.py pairs answers with labels *by position* within a category, so each split's lines
appear in the same order in both files; the question file's ids must be unique across splits
because eval_pope.py indexes it by question_id to find the category.
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import QA, SHORT_SUFFIX
from ..questions.pope import SPLITS
from ..scene import Scene
from .io import save_image, write_jsonl


def image_id(index: int) -> str:
    return f"COCO_val2014_{index:012d}"


def write(root: Path, items: list[tuple[Scene, list[QA]]], id_start: int = 0) -> None:
    base = root / "pope"
    for scene, _ in items:
        save_image(scene, base / "val2014" / f"{scene.image_id}.png")
    rows, gid = [], id_start
    for split in SPLITS:
        labels = []
        for scene, qas in items:
            for qa in (q for q in qas if q.extra["split"] == split):
                image = f"{scene.image_id}.png"
                labels.append({"question_id": len(labels) + 1, "image": image, "text": qa.question,
                               "label": qa.extra["label"]})
                gid += 1
                rows.append({"question_id": gid, "image": image, "text": qa.question + SHORT_SUFFIX,
                             "category": split})
        write_jsonl(base / "coco" / f"coco_pope_{split}.json", labels)
    write_jsonl(base / "llava_pope_test.jsonl", rows)
