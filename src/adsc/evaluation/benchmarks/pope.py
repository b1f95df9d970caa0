"""POPE (COCO val2014, adversarial / popular / random): LLaVA's eval_pope.py."""

from __future__ import annotations

from .base import SHORT_ANSWER, Benchmark, DataError, Sample

SPLITS = ("adversarial", "popular", "random")


def pope_answer(text: str) -> str:
    """eval_pope.py: first sentence, commas out, "no" if a word is No/not/no, else "yes".

    The split is on single spaces (upstream), so "NO" or "no." inside a sentence stay "yes".
    """
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def binary_metrics(preds: list[str], labels: list[str]) -> dict:
    tp = sum(p == "yes" and l == "yes" for p, l in zip(preds, labels))
    fp = sum(p == "yes" and l == "no" for p, l in zip(preds, labels))
    tn = sum(p == "no" and l == "no" for p, l in zip(preds, labels))
    fn = sum(p == "no" and l == "yes" for p, l in zip(preds, labels))
    # Upstream divides by zero on these edge cases; 0 is the only sensible value to report.
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": 100.0 * (tp + tn) / len(preds), "precision": 100.0 * precision, "recall": 100.0 * recall,
        "f1": 100.0 * f1, "yes_ratio": 100.0 * preds.count("yes") / len(preds), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "n": len(preds),
    }


class POPE(Benchmark):
    name = "pope"
    files_help = "pope/coco/coco_pope_{adversarial,popular,random}.json and pope/val2014/<image>"

    def __init__(self, root: str, splits=SPLITS, allow_outside_root: bool = False):
        super().__init__(root, allow_outside_root)
        self.labels: dict[str, str] = {}
        self.split_of: dict[str, str] = {}
        images = self.path("pope", "val2014")
        for split in splits:
            path = self.path("pope", "coco", f"coco_pope_{split}.json")
            rows = self.load_jsonl("pope", "coco", f"coco_pope_{split}.json")
            if not rows:  # the headline is the mean over every split: one missing would shift it
                raise DataError(f"pope: {path} has no questions; the F1 mean needs all of {', '.join(splits)}: "
                                "download the official split file again")
            for n, row in enumerate(rows):
                where = f"record {n}"
                qid = self.field(row, "question_id", path, where, (str, int))
                # question ids restart at 1 in every split file: the split makes them unique.
                sid = f"{split}/{qid}"
                where = f"question {sid!r}"
                if sid in self.labels:
                    raise DataError(f"pope: {path}: question id {qid!r} occurs twice; ids must be unique per split")
                label = str(row.get("label", "")).strip().lower()
                if label not in ("yes", "no"):
                    raise DataError(f"pope: {path}: {where} has label {row.get('label')!r}, expected yes/no")
                image = self.image_in(images, self.field(row, "image", path, where), where)
                self.samples.append(Sample(sid, image, self.field(row, "text", path, where) + SHORT_ANSWER))
                self.labels[sid] = label
                self.split_of[sid] = split

    def score(self, predictions: dict[str, str]) -> dict:
        preds = self.predictions_for(predictions)
        out = {}
        for split in dict.fromkeys(self.split_of[s.id] for s in self.samples):
            ids = [s.id for s in self.samples if self.split_of[s.id] == split]
            out[split] = binary_metrics([pope_answer(preds[i]) for i in ids], [self.labels[i] for i in ids])
        out["f1_mean"] = sum(v["f1"] for v in out.values()) / len(out)
        out["accuracy_mean"] = sum(out[s]["accuracy"] for s in out if s != "f1_mean") / (len(out) - 1)
        return out
