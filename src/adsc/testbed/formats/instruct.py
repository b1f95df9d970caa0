"""Training data in the LLaVA-Instruct-665K format (llava_v1_5_mix665k.json).

train/llava_instruct_synthetic.json  [{"id", "image": "images/<id>.png", "conversations": [
                                        {"from": "human", "value": "<image>\\n<prompt>"}, {"from": "gpt", "value": ...}, ...]}]
train/images/<id>.png                 paths in "image" are relative to train/, as 665K's are to its image folder

One record per (image, family), several turns each, like 665K's VQAv2/GQA records. Every prompt
is word for word the one the matching evaluation file gives the model, suffixes included, so a
model trained here is evaluated on the distribution it saw.
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import MC_SUFFIX, QA, SHORT_SUFFIX
from ..scene import Scene
from . import scienceqa, textvqa
from .io import save_image, write_json


def prompt(qa: QA) -> str:
    if qa.family == "textvqa":
        return textvqa.prompt(qa)
    if qa.family == "sqa":
        return scienceqa.prompt(qa) + MC_SUFFIX
    return qa.question + SHORT_SUFFIX


def record(record_id: str, image: str, qas: list[QA]) -> dict:
    conv = []
    for i, qa in enumerate(qas):
        conv.append({"from": "human", "value": ("<image>\n" if i == 0 else "") + prompt(qa)})
        conv.append({"from": "gpt", "value": qa.answer})
    return {"id": record_id, "image": image, "conversations": conv}


def write(root: Path, items: list[tuple[Scene, dict[str, list[QA]]]]) -> int:
    base = root / "train"
    records = []
    for scene, by_family in items:
        save_image(scene, base / "images" / f"{scene.image_id}.png")
        for family, qas in by_family.items():
            if qas:
                records.append(record(f"{scene.image_id}-{family}", f"images/{scene.image_id}.png", qas))
    write_json(base / "llava_instruct_synthetic.json", records)
    return len(records)
