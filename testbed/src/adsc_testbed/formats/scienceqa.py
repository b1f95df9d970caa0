"""ScienceQA files as LLaVA-1.5 evaluates them (scripts/v1_5/eval/sqa.sh, llava/eval/eval_science_qa.py).

scienceqa/problems.json        pid -> {question, choices, answer (index), hint, image, task, grade,
                               subject, topic, category, skill, lecture, solution, split}
scienceqa/pid_splits.json      {"train": [], "val": [], "test": [pids], ...}
scienceqa/llava_test_CQM-A.json [{id, image: "<pid>/image.png", conversations: [human, gpt]}]
scienceqa/images/test/<pid>/image.png

The human turn is "<image>\\nContext: <hint>\\n<question>\\nA. <x>\\nB. <y>" (the Context line only
when the hint is non-empty); model_vqa_science.py strips "<image>", puts it back in front and,
with --single-pred-prompt, appends the multiple-choice suffix itself, so the file carries none.
"""

from __future__ import annotations

from pathlib import Path

from ..questions.common import QA
from ..questions.sqa import LETTERS
from ..scene import Scene
from .io import save_image, write_json

SPLIT_KEYS = ("train", "val", "test", "trainval", "minival", "minitest")


def image_id(index: int) -> str:
    return str(index)  # ScienceQA problem ids are digit strings; one problem per image here


def prompt(qa: QA) -> str:
    """The LLaVA CQM-A prompt without the image token and without the suffix."""
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(qa.extra["choices"]))
    context = f"Context: {qa.extra['hint']}\n" if qa.extra["hint"] else ""
    return f"{context}{qa.question}\n{options}"


def problem(qa: QA, split: str) -> dict:
    return {"question": qa.question, "choices": qa.extra["choices"], "answer": qa.extra["answer_index"],
            "hint": qa.extra["hint"], "image": "image.png", "task": "closed choice", "grade": "grade4",
            "subject": "natural science", "topic": "synthetic-scenes", "category": qa.kind, "skill": qa.kind,
            "lecture": "", "solution": qa.extra["solution"], "split": split}


def write(root: Path, items: list[tuple[Scene, list[QA]]]) -> None:
    base = root / "scienceqa"
    problems, conv = {}, []
    for scene, qas in items:
        pid = scene.image_id
        qa = qas[0]
        save_image(scene, base / "images" / "test" / pid / "image.png")
        problems[pid] = problem(qa, "test")
        conv.append({"id": pid, "image": f"{pid}/image.png",
                     "conversations": [{"from": "human", "value": "<image>\n" + prompt(qa)},
                                       {"from": "gpt", "value": qa.answer}]})
    splits = {k: [] for k in SPLIT_KEYS}
    splits["test"] = list(problems)
    write_json(base / "problems.json", problems)
    write_json(base / "pid_splits.json", splits)
    write_json(base / "llava_test_CQM-A.json", conv, indent=2)
