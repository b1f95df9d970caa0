"""MME: LLaVA's convert_answer_to_mme.py + MME's eval_tool/calculation.py.

Per subtask: acc over questions, acc+ over images (both questions of the image right),
score = 100 * acc + 100 * acc+. Perception = sum of the ten perception subtasks (max 2000),
cognition of the four others (max 800).
"""

from __future__ import annotations

import os
from collections import defaultdict

from .base import SHORT_ANSWER, Benchmark, DataError, Sample

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
RELEASE = "MME_Benchmark_release_version"
IMAGE_EXT = (".png", ".jpg", ".jpeg")


def mme_answer(text: str) -> str:
    """calculation.py parse_pred_ans on the lowercased output: yes / no / other (always wrong)."""
    text = text.lower()
    if text in ("yes", "no"):
        return text
    head = text[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


def _question_key(prompt: str) -> str:
    # convert_answer_to_mme.py matches the prompt to the answer file after removing the
    # single-word suffix and making sure the yes/no instruction is present.
    q = prompt.replace("Answer the question using a single word or phrase.", "").strip()
    if "Please answer yes or no." not in q:
        q = q + " Please answer yes or no."
    return q


class MME(Benchmark):
    name = "mme"
    files_help = (
        f"mme/{RELEASE}/<subtask>/(images/ + questions_answers_YN/ | <image> + <stem>.txt), "
        "optionally mme/llava_mme.jsonl (LLaVA's question file)"
    )

    def __init__(self, root: str):
        super().__init__(root)
        self.truth: dict[str, str] = {}  # sample id -> "yes"/"no"
        self.subtask: dict[str, str] = {}
        self.image_key: dict[str, str] = {}
        gt = self._read_ground_truth()
        if os.path.exists(self.path("mme", "llava_mme.jsonl")):
            self._from_question_file(gt)
        else:
            self._from_release(gt)

    def _subtask_dirs(self, category: str) -> tuple[str, str]:
        base = self.path("mme", RELEASE, category)
        if os.path.isdir(os.path.join(base, "images")):
            return os.path.join(base, "images"), os.path.join(base, "questions_answers_YN")
        return base, base

    def _read_ground_truth(self) -> dict:
        """(category, stem.txt, question) -> (answer, image path), like get_gt()."""
        release = self.require("mme", RELEASE)
        gt = {}
        for category in sorted(os.listdir(release)):
            if not os.path.isdir(os.path.join(release, category)) or category not in PERCEPTION + COGNITION:
                continue
            image_dir, qa_dir = self._subtask_dirs(category)
            if not os.path.isdir(qa_dir):
                raise DataError(f"mme: missing {qa_dir}")
            images = {os.path.splitext(f)[0]: f for f in os.listdir(image_dir) if f.lower().endswith(IMAGE_EXT)}
            for fname in sorted(os.listdir(qa_dir)):
                if not fname.endswith(".txt"):
                    continue
                stem = fname[:-4]
                with open(os.path.join(qa_dir, fname), encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        if not line.strip():
                            continue
                        parts = line.strip().split("\t")
                        if len(parts) != 2:
                            raise DataError(f"mme: {qa_dir}/{fname} line {n}: expected 'question<TAB>answer'")
                        image = os.path.join(image_dir, images.get(stem, stem + ".png"))
                        gt[(category, fname, parts[0])] = (parts[1].strip().lower(), image)
        if not gt:
            raise DataError(f"mme: no question files under {release}")
        return gt

    def _add(self, sid: str, category: str, image: str, text: str, answer: str, image_key: str) -> None:
        if sid in self.truth:
            raise DataError(f"mme: duplicate question {sid!r}")
        self.samples.append(Sample(sid, image, text))
        self.truth[sid] = answer
        self.subtask[sid] = category
        self.image_key[sid] = image_key

    def _from_release(self, gt: dict) -> None:
        # Question text as in the answer files ("... Please answer yes or no.") + LLaVA's suffix.
        for n, ((category, fname, question), (answer, image)) in enumerate(gt.items()):
            image_key = f"{category}/{os.path.basename(image)}"
            self._add(f"{image_key}#{n}", category, image, question + SHORT_ANSWER, answer, image_key)

    def _from_question_file(self, gt: dict) -> None:
        rows = self.load_jsonl("mme", "llava_mme.jsonl")
        seen = defaultdict(int)
        for row in rows:
            qid = str(row["question_id"])  # e.g. "code_reasoning/0020.png", twice per image
            category, fname = qid.split("/")[-2:]
            key = (category, os.path.splitext(fname)[0] + ".txt", _question_key(row["text"]))
            if key not in gt:
                raise DataError(f"mme: question {qid!r} ({row['text']!r}) not found in the {RELEASE} answer files")
            answer, _ = gt[key]
            image = self.path("mme", RELEASE, row.get("image", qid))
            self._add(f"{qid}#{seen[qid]}", category, image, row["text"], answer, qid)
            seen[qid] += 1

    def score(self, predictions: dict[str, str]) -> dict:
        preds = self.predictions_for(predictions)
        by_task: dict[str, list[str]] = defaultdict(list)
        for s in self.samples:
            by_task[self.subtask[s.id]].append(s.id)
        subtasks = {}
        for task, ids in by_task.items():
            right = {i: mme_answer(preds[i].replace("\n", " ").replace("\t", " ")) == self.truth[i] for i in ids}
            images = defaultdict(list)
            for i in ids:
                images[self.image_key[i]].append(right[i])
            acc = 100.0 * sum(right.values()) / len(ids)
            acc_plus = 100.0 * sum(all(v) for v in images.values()) / len(images)
            subtasks[task] = {"acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus, "n": len(ids)}
        return {
            "perception": sum(subtasks[t]["score"] for t in PERCEPTION if t in subtasks),
            "cognition": sum(subtasks[t]["score"] for t in COGNITION if t in subtasks),
            "subtasks": subtasks,
        }
