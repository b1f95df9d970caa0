"""VQAv2 val2014 files: the official questions/annotations JSON and LLaVA's question jsonl.

vqav2/v2_OpenEnded_mscoco_val2014_questions.json  {info, task_type, data_type, license, data_subtype,
                                                   questions: [{image_id, question, question_id}]}
vqav2/v2_mscoco_val2014_annotations.json          {info, license, data_subtype, data_type, annotations:
    [{question_type, multiple_choice_answer, answers: [10 x {answer, answer_confidence, answer_id}],
      image_id, answer_type, question_id}]}
vqav2/llava_vqav2_mscoco_val2014.jsonl            {"question_id", "image", "text", "category"}
vqav2/val2014/COCO_val2014_<image_id:012d>.png

Question ids follow VQAv2's image_id * 1000 + k. The headline real-data number is test-dev
(EvalAI server); val with these files is what can be scored locally.
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import QA, SHORT_SUFFIX
from ..scene import Scene
from .io import save_image, write_json, write_jsonl

INFO = {"description": "adsc synthetic testbed in the VQAv2 format", "version": "2.0", "year": 2026}
LICENSE = {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}


def image_id(index: int) -> str:
    return f"COCO_val2014_{index:012d}"


def numeric_id(scene: Scene) -> int:
    return int(scene.image_id.rsplit("_", 1)[1])


def write(root: Path, items: list[tuple[Scene, list[QA]]]) -> None:
    base = root / "vqav2"
    questions, annotations, rows = [], [], []
    for scene, qas in items:
        save_image(scene, base / "val2014" / f"{scene.image_id}.png")
        img = numeric_id(scene)
        for k, qa in enumerate(qas):
            qid = img * 1000 + k
            questions.append({"image_id": img, "question": qa.question, "question_id": qid})
            # multiple_choice_answer is VQAv2's most frequent answer; ours is the true count, which
            # the ten answers keep as the strict majority after normalisation ("three" -> "3").
            annotations.append({"question_type": qa.extra["question_type"], "multiple_choice_answer": qa.answer,
                                "answers": qa.extra["answers"], "image_id": img,
                                "answer_type": qa.extra["answer_type"], "question_id": qid})
            rows.append({"question_id": qid, "image": f"{scene.image_id}.png", "text": qa.question + SHORT_SUFFIX,
                         "category": "default"})
    write_json(base / "v2_OpenEnded_mscoco_val2014_questions.json",
               {"info": INFO, "task_type": "Open-Ended", "data_type": "mscoco", "license": LICENSE,
                "data_subtype": "val2014", "questions": questions})
    write_json(base / "v2_mscoco_val2014_annotations.json",
               {"info": INFO, "license": LICENSE, "data_subtype": "val2014", "data_type": "mscoco",
                "annotations": annotations})
    write_jsonl(base / "llava_vqav2_mscoco_val2014.jsonl", rows)
