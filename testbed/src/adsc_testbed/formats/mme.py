"""MME files in the release layout plus LLaVA-1.5's question file (scripts/v1_5/eval/mme.sh).

mme/llava_mme.jsonl  {"question_id": "existence/0001.png", "image": same, "text": q + suffix, "category"}
                     two questions per image on adjacent lines (Yes first, then No)
mme/MME_Benchmark_release_version/<subtask>/<NNNN>.png
mme/MME_Benchmark_release_version/<subtask>/<NNNN>.txt  "<question> Please answer yes or no.\t<Yes|No>" per line

LLaVA's convert_answer_to_mme.py strips the short-answer suffix from the answer's prompt, appends
" Please answer yes or no." and looks the result up in these .txt files, so both must agree.
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import QA, SHORT_SUFFIX
from ..questions.mme import SUBTASKS
from ..scene import Scene
from .io import save_image, write_jsonl

RELEASE = "MME_Benchmark_release_version"
YN = " Please answer yes or no."


def image_id(index: int) -> str:
    """Images (index from 1) cycle through the subtasks; each subtask numbers its own from 0001."""
    k = index - 1
    return f"{SUBTASKS[k % len(SUBTASKS)]}/{k // len(SUBTASKS) + 1:04d}"


def write(root: Path, items: list[tuple[Scene, list[QA]]]) -> None:
    base = root / "mme"
    rows = []
    for scene, qas in items:
        subtask, stem = scene.image_id.split("/")
        save_image(scene, base / RELEASE / subtask / f"{stem}.png")
        lines = "".join(f"{qa.question}{YN}\t{qa.answer}\n" for qa in qas)
        (base / RELEASE / subtask / f"{stem}.txt").write_text(lines, encoding="utf-8")
        for qa in qas:
            rows.append({"question_id": f"{scene.image_id}.png", "image": f"{scene.image_id}.png",
                         "text": qa.question + SHORT_SUFFIX, "category": subtask})
    write_jsonl(base / "llava_mme.jsonl", rows)
