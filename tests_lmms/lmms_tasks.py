"""The fabricated POPE and VQAv2 sets of tests/evaluation/eval_fixtures.py as lmms-eval tasks.

Each task is one YAML in lmms-eval's task format that ``include``s lmms-eval's own task file
(``pope_adv.yaml``, ``vqav2_val.yaml``, ...) and replaces only where the data comes from: a
local parquet file (``dataset_path: parquet`` + ``dataset_kwargs.data_files``, which lmms-eval
0.7 resolves next to the YAML) instead of the lmms-lab hub dataset. Prompts, generation settings,
``process_results`` and aggregation stay lmms-eval's, so the scores are lmms-eval's rules.

The parquet rows have the hub datasets' columns; images are the fixture's own files, embedded as
bytes (the hub sets' ``Image`` feature), so both paths decode the same pixels.
"""

from __future__ import annotations

import json
import os

POPE_TASKS = {"adversarial": ("adsc_pope_adv", "pope_adv"), "popular": ("adsc_pope_pop", "pope_pop"),
              "random": ("adsc_pope_random", "pope_random")}
VQAV2_TASK = "adsc_vqav2_val"
TASKS = [t for t, _ in POPE_TASKS.values()] + [VQAV2_TASK]

_YAML = """include: {include}
task: {task}
dataset_path: parquet
dataset_name: null
dataset_kwargs:
  data_files:
{data_files}
"""


def lmms_task_file(*parts: str) -> str:
    """A task file shipped with the installed lmms-eval."""
    import lmms_eval.tasks

    return os.path.join(os.path.dirname(lmms_eval.tasks.__file__), *parts)


def _image_bytes(path: str) -> dict:
    with open(path, "rb") as fh:
        return {"bytes": fh.read(), "path": os.path.basename(path)}


def _write_parquet(path: str, rows: list[dict], features) -> None:
    from datasets import Dataset

    Dataset.from_list(rows, features=features).to_parquet(path)


def _read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_pope_tasks(data_root: str, task_dir: str) -> list[str]:
    """lmms-lab POPE's columns (question_id, question, answer, image, category), one split per file."""
    from datasets import Features, Image, Value

    features = Features({"question_id": Value("string"), "question": Value("string"), "answer": Value("string"),
                         "image_source": Value("string"), "image": Image(), "category": Value("string")})
    for split, (task, upstream) in POPE_TASKS.items():
        rows = [{"question_id": str(r["question_id"]), "question": r["text"], "answer": r["label"],
                 "image_source": r["image"].removesuffix(".jpg"), "category": split,
                 "image": _image_bytes(os.path.join(data_root, "pope", "val2014", r["image"]))}
                for r in _read_jsonl(os.path.join(data_root, "pope", "coco", f"coco_pope_{split}.json"))]
        _write_parquet(os.path.join(task_dir, f"pope_{split}.parquet"), rows, features)
        with open(os.path.join(task_dir, f"{task}.yaml"), "w") as fh:
            # lmms-eval's pope_* tasks read the split named like the file's category.
            fh.write(_YAML.format(include=lmms_task_file("pope", f"{upstream}.yaml"), task=task,
                                  data_files=f"    {split}: pope_{split}.parquet"))
    return [t for t, _ in POPE_TASKS.values()]


def write_vqav2_task(data_root: str, task_dir: str) -> str:
    """lmms-lab VQAv2's validation columns: question_id, question, answers (dicts), image."""
    from datasets import Features, Image, Value

    with open(os.path.join(data_root, "vqav2", "v2_OpenEnded_mscoco_val2014_questions.json")) as fh:
        questions = json.load(fh)["questions"]
    with open(os.path.join(data_root, "vqav2", "v2_mscoco_val2014_annotations.json")) as fh:
        annotations = {a["question_id"]: a for a in json.load(fh)["annotations"]}
    answer = {"answer": Value("string"), "answer_confidence": Value("string"), "answer_id": Value("int64")}
    features = Features({"question_id": Value("int64"), "question": Value("string"), "image_id": Value("int64"),
                         "multiple_choice_answer": Value("string"), "answers": [answer], "image": Image()})
    rows = []
    for q in questions:
        ann = annotations[q["question_id"]]
        image = os.path.join(data_root, "vqav2", "val2014", f"COCO_val2014_{q['image_id']:012d}.jpg")
        rows.append({"question_id": q["question_id"], "question": q["question"], "image_id": q["image_id"],
                     "multiple_choice_answer": ann["multiple_choice_answer"], "answers": ann["answers"],
                     "image": _image_bytes(image)})
    _write_parquet(os.path.join(task_dir, "vqav2_val.parquet"), rows, features)
    with open(os.path.join(task_dir, f"{VQAV2_TASK}.yaml"), "w") as fh:
        fh.write(_YAML.format(include=lmms_task_file("vqav2", "vqav2_val.yaml"), task=VQAV2_TASK,
                              data_files="    validation: vqav2_val.parquet"))
    return VQAV2_TASK


def write_tasks(data_root: str, task_dir: str) -> list[str]:
    os.makedirs(task_dir, exist_ok=True)
    return write_pope_tasks(data_root, task_dir) + [write_vqav2_task(data_root, task_dir)]
