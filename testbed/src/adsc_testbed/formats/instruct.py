"""Training data in the LLaVA-Instruct-665K format (llava_v1_5_mix665k.json).

train/llava_instruct_synthetic.json  [{"id", "image": "images/<id>.png", "conversations": [
                                        {"from": "human", "value": "<image>\\n<prompt>"}, {"from": "gpt", "value": ...}]}]
train/llava_caption_synthetic.json    the "caption" records alone: the alignment stage's data, as
                                      LLaVA's stage 1 has its own caption file (blip_laion_cc_sbu_558k.json)
train/llava_drill_synthetic.json      the "drill" records alone: multi-turn existence drills (questions/drill.py),
                                      read by pretraining's drill stage and --drills-in-qa
train/llava_drill_{read,count}_synthetic.json  the reading and counting drills, the same way (--drills-in-qa read=K)
train/images/<id>.png                 paths in "image" are relative to train/, as 665K's are to its image folder

One record per question (id ``<image>-<family>-<k>``), unlike 665K's multi-turn VQAv2/GQA records.
(The drills, ``<image>-drill-0``, ``<image>-drill_read-0``, ``<image>-drill_count-0``, are multi-turn,
drawn so that their turns leak nothing, and live in their own files, outside the mix.)
Why: a small model trained from scratch takes any shortcut the text offers, and several questions
about one image leak each other's answers -- POPE and MME alternate Yes/No, an MME pair differs in
one detail, "how many red stars?" answers "is there a red star?". The first testbed model learnt
exactly that (training loss 0.001 with the images shuffled across the batch) and answered "Yes" to
every single-question evaluation prompt. With one question per record, the image is the only
source of the answer. Every prompt is word for word the one the matching evaluation file gives the
model, suffixes included, so a model trained here is evaluated on the distribution it saw.
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import MC_SUFFIX, QA, SHORT_SUFFIX
from ..scene import Scene
from . import scienceqa, textvqa
from .io import save_image, write_json


def prompt(qa: QA) -> str:
    if qa.family == "caption":  # an open description, like 665K's detail records: no short-answer suffix
        return qa.question
    if qa.family == "textvqa":
        return textvqa.prompt(qa)
    if qa.family == "sqa":
        return scienceqa.prompt(qa) + MC_SUFFIX
    return qa.question + SHORT_SUFFIX


def family_of(record_id: str) -> str:
    """The family of a testbed record id ``<image>-<family>-<k>`` (what ``write`` names them), else "other"."""
    return record_id.split("-")[1] if record_id.count("-") >= 2 else "other"


def record(record_id: str, image: str, *qas: QA) -> dict:
    """One record; several QAs become a multi-turn conversation (the image token in the first turn only)."""
    turns = []
    for i, qa in enumerate(qas):
        turns += [{"from": "human", "value": ("<image>\n" if i == 0 else "") + prompt(qa)}, {"from": "gpt", "value": qa.answer}]
    return {"id": record_id, "image": image, "conversations": turns}


INSTRUCT_FILE = "llava_instruct_synthetic.json"  # the 665K-format mix under train/
CAPTION_FILE = "llava_caption_synthetic.json"  # its object listings alone (the alignment stage)
# Drill family -> its file under train/ (not in the mix: pretrain reads them, drill stage and --drills-in-qa).
DRILL_FILES = {"drill": "llava_drill_synthetic.json", "drill_read": "llava_drill_read_synthetic.json",
               "drill_count": "llava_drill_count_synthetic.json"}


def write(root: Path, items: list[tuple[Scene, dict[str, list[QA]]]]) -> int:
    base = root / "train"
    records, drills = [], {family: [] for family in DRILL_FILES}
    for scene, by_family in items:
        save_image(scene, base / "images" / f"{scene.image_id}.png")
        for family, qas in by_family.items():
            if family in DRILL_FILES:  # built leak-free to be asked together (questions/drill.py)
                if qas:
                    drills[family].append(record(f"{scene.image_id}-{family}-0", f"images/{scene.image_id}.png", *qas))
                continue
            for k, qa in enumerate(qas):
                records.append(record(f"{scene.image_id}-{family}-{k}", f"images/{scene.image_id}.png", qa))
    write_json(base / INSTRUCT_FILE, records)
    write_json(base / CAPTION_FILE, [r for r in records if family_of(r["id"]) == "caption"])
    for family, name in DRILL_FILES.items():
        write_json(base / name, drills[family])
    return len(records)
