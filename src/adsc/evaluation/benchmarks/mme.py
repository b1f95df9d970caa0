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
    """``subtasks``: the subtasks this data set is meant to have. Default: the official release,
    whose perception headline needs all ten perception subtasks (a missing one is an error);
    a declared subset is run and scored alone (and named in the scores)."""

    name = "mme"
    files_help = (
        f"mme/{RELEASE}/<subtask>/(images/ + questions_answers_YN/ | <image> + <stem>.txt), "
        "optionally mme/llava_mme.jsonl (LLaVA's question file)"
    )

    def __init__(self, root: str, subtasks=None, allow_outside_root: bool = False):
        super().__init__(root, allow_outside_root)
        known = PERCEPTION + COGNITION
        if subtasks is not None:
            subtasks = tuple(subtasks)
            bad = [t for t in subtasks if t not in known]
            if not subtasks or bad:
                raise DataError(f"mme: unknown subtasks {bad or '(none given)'}; choose from {', '.join(known)}")
        self.declared = subtasks
        self.wanted = subtasks or known
        self.truth: dict[str, str] = {}  # sample id -> "yes"/"no"
        self.subtask: dict[str, str] = {}
        self.image_key: dict[str, str] = {}
        gt = self._read_ground_truth()
        if os.path.exists(self.path("mme", "llava_mme.jsonl")):
            self._from_question_file(gt)
        else:
            self._from_release(gt)
        present = set(self.subtask.values())
        missing = [t for t in (subtasks or PERCEPTION) if t not in present]
        if missing:
            have = ",".join(t for t in known if t in present)
            raise DataError(
                f"mme: no questions for subtask(s) {', '.join(missing)} under {self.path('mme', RELEASE)}; "
                + ("the perception headline sums all ten perception subtasks: add them from the official release, "
                   f"or declare the subset you have with --mme-subtasks {have} "
                   "(benchmark_options={'mme': {'subtasks': [...]}})" if subtasks is None
                   else "add their files, or leave them out of --mme-subtasks")
            )

    def _subtask_dirs(self, category: str) -> tuple[str, str]:
        base = self.path("mme", RELEASE, category)
        if os.path.isdir(os.path.join(base, "images")):
            return os.path.join(base, "images"), os.path.join(base, "questions_answers_YN")
        return base, base

    def _read_ground_truth(self) -> dict:
        """(category, stem.txt, question) -> (answer, image path), like get_gt()."""
        release = self.path("mme", RELEASE)
        if not os.path.isdir(release):
            raise DataError(f"mme: missing {release}\n  expected layout: {self.files_help}")
        gt = {}
        for category in sorted(os.listdir(release)):
            if not os.path.isdir(os.path.join(release, category)) or category not in self.wanted:
                continue
            image_dir, qa_dir = self._subtask_dirs(category)
            if not os.path.isdir(qa_dir):
                raise DataError(f"mme: missing {qa_dir}")
            images = {os.path.splitext(f)[0]: f for f in os.listdir(image_dir) if f.lower().endswith(IMAGE_EXT)}
            for fname in sorted(os.listdir(qa_dir)):
                if fname.endswith(".txt"):
                    self._read_answer_file(gt, category, os.path.join(qa_dir, fname), image_dir, images)
        if not gt:
            raise DataError(f"mme: no question files under {release}")
        return gt

    def _read_answer_file(self, gt: dict, category: str, path: str, image_dir: str, images: dict) -> None:
        fname = os.path.basename(path)
        stem = fname[:-4]
        for n, line in self.text_lines(path):
            parts = line.strip().split("\t")
            if len(parts) != 2 or parts[1].strip().lower() not in ("yes", "no"):
                raise DataError(f"mme: {path} line {n}: expected 'question<TAB>Yes|No'; restore it from the official release")
            image = os.path.join(image_dir, images.get(stem, stem + ".png"))
            gt[(category, fname, parts[0])] = (parts[1].strip().lower(), image)

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
        path = self.path("mme", "llava_mme.jsonl")
        seen = defaultdict(int)
        for n, row in enumerate(self.load_jsonl("mme", "llava_mme.jsonl")):
            qid = str(self.field(row, "question_id", path, f"record {n}", (str, int)))  # "code_reasoning/0020.png"
            where = f"question {qid!r}"
            parts = qid.split("/")
            if len(parts) < 2:
                raise DataError(f"mme: {path}: {where}: expected '<subtask>/<image>' as question_id")
            category, fname = parts[-2:]
            if category not in self.wanted:
                if category in PERCEPTION + COGNITION:
                    continue  # a subtask left out of a declared subset
                raise DataError(f"mme: {path}: {where}: unknown subtask {category!r}")
            text = self.field(row, "text", path, where)
            key = (category, os.path.splitext(fname)[0] + ".txt", _question_key(text))
            if key not in gt:
                raise DataError(f"mme: question {qid!r} ({text!r}) not found in the {RELEASE} answer files")
            answer, _ = gt[key]
            image = self.image_in(self.path("mme", RELEASE), self.field(row, "image", path, where, default=qid), where)
            self._add(f"{qid}#{seen[qid]}", category, image, text, answer, qid)
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
        # Cognition only over a complete (or declared) set: a partial sum would read as a low score.
        cognition = [t for t in COGNITION if t in subtasks]
        complete = bool(cognition) and (self.declared is not None or len(cognition) == len(COGNITION))
        out = {
            "perception": sum(subtasks[t]["score"] for t in PERCEPTION if t in subtasks),
            "cognition": sum(subtasks[t]["score"] for t in cognition) if complete else None,
            "subtasks": subtasks,
        }
        if self.declared is not None:
            out["declared_subtasks"] = list(self.declared)
        return out
