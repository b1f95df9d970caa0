"""GQA testdev-balanced files, as LLaVA-1.5 evaluates them (scripts/v1_5/eval/gqa.sh).

gqa/llava_gqa_testdev_balanced.jsonl      question file for the model (LLaVA's jsonl format)
gqa/data/images/<imageId>.png
gqa/data/testdev_balanced_questions.json  qid -> {imageId, question, answer, fullAnswer, isBalanced, types, ...}
gqa/data/testdev_balanced_choices.json    qid -> {valid, plausible}   (read by GQA's official eval.py)
gqa/data/testdev_balanced_sceneGraphs.json imageId -> {width, height, objects}  (eval.py loads it too)
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import QA, RELATIONS, SHORT_SUFFIX, holds
from ..scene import Scene
from ..world import COLORS, SHAPES
from .io import save_image, write_json, write_jsonl

ANSWER_SETS = {"queryColorRel": list(COLORS), "queryShapeRel": list(SHAPES), "verifyRel": ["yes", "no"],
               "chooseAttr": ["small", "large"]}


def image_id(index: int) -> str:
    return f"n{index:06d}"  # GQA image ids look like "n161313"


def question_id(counter: int) -> str:
    return str(20000000 + counter)  # GQA question ids are digit strings ("20968379")


def scene_graph(scene: Scene) -> dict:
    objects = {}
    for o in scene.objects:
        x0, y0, x1, y1 = o.bbox
        rels = [{"name": rel, "object": str(b.id)} for b in scene.objects if b.id != o.id
                for rel in RELATIONS if holds(rel, o, b)]
        objects[str(o.id)] = {"name": o.shape, "x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0,
                              "attributes": [o.color, o.size], "relations": rels}
    return {"width": scene.spec.image_size, "height": scene.spec.image_size, "objects": objects}


def _choices(qa: QA) -> dict:
    valid = ANSWER_SETS.get(qa.kind)
    if valid is None:  # chooseRel: the two sides named in the question
        valid = ["left", "right"] if "left or" in qa.question else ["above", "below"]
    return {"valid": valid, "plausible": valid}


def write(root: Path, items: list[tuple[Scene, list[QA]]], id_start: int = 0) -> None:
    data = root / "gqa" / "data"
    questions, choices, graphs, rows = {}, {}, {}, []
    counter = id_start
    for scene, qas in items:
        save_image(scene, data / "images" / f"{scene.image_id}.png")
        graphs[scene.image_id] = scene_graph(scene)
        for qa in qas:
            counter += 1
            qid = question_id(counter)
            prog = qa.extra["semantic"]
            questions[qid] = {
                "imageId": scene.image_id, "question": qa.question, "answer": qa.answer,
                "fullAnswer": qa.extra["fullAnswer"], "isBalanced": True,
                "groups": {"global": qa.extra["group"], "local": f"{qa.kind}-{qa.answer}"},
                "types": qa.extra["types"], "semantic": prog,
                "semanticStr": " ".join(f"{s['operation']}: {s['argument']} {s['dependencies']}" for s in prog),
                "entailed": [], "equivalent": [qid],
                "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
            }
            choices[qid] = _choices(qa)
            rows.append({"question_id": qid, "image": f"{scene.image_id}.png", "text": qa.question + SHORT_SUFFIX,
                         "category": "default"})
    write_json(data / "testdev_balanced_questions.json", questions)
    write_json(data / "testdev_balanced_choices.json", choices)
    write_json(data / "testdev_balanced_sceneGraphs.json", graphs)
    write_jsonl(root / "gqa" / "llava_gqa_testdev_balanced.jsonl", rows)
