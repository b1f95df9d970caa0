"""Six tiny benchmark sets in the official file formats, the "model outputs" to score on them,
and the scores computed by hand (the comments show the arithmetic)."""

from __future__ import annotations

import json
import os

from PIL import Image


def _image(path: str, colour=(120, 30, 200), size=(20, 14)) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _json(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(data, fh)


def _jsonl(path: str, rows) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


# ---------------------------------------------------------------------------------- GQA
GQA_Q = {
    "201": ("n1", "What color is the car?", "red", True),
    "202": ("n1", "Which side is the tree on?", "left", True),
    "203": ("n2", "Is the sky blue?", "yes", False),  # unbalanced: run, never scored
    "204": ("n2", "What is on the floor?", "table", True),
    "205": ("n3", "Is it a cat?", "no", True),
}
GQA_PRED = {
    "201": "Red.",  # rstrip('.').lower() -> "red"  right
    "202": "Left side",  # wrong
    "203": "no",  # wrong, but unbalanced: ignored
    "204": "The table",  # GQA removes no article -> "the table" != "table"  wrong
    "205": "no..",  # rstrip strips every trailing dot -> "no"  right
}
GQA_EXPECTED = 50.0  # 2 right of 4 balanced


def write_gqa(root: str) -> None:
    data = {qid: {"imageId": img, "question": q, "answer": a, "fullAnswer": a, "isBalanced": bal, "types": {}}
            for qid, (img, q, a, bal) in GQA_Q.items()}
    _json(f"{root}/gqa/testdev_balanced_questions.json", data)
    for img in ("n1", "n2", "n3"):
        _image(f"{root}/gqa/images/{img}.jpg")


# ---------------------------------------------------------------------------------- MME
MME_RELEASE = "mme/MME_Benchmark_release_version"
MME_FILES = {  # (category, stem, split layout?) -> [(question, answer, prediction)]
    ("existence", "0001", False): [
        ("Is there a dog in this image? Please answer yes or no.", "Yes", "Yes"),  # exact -> right
        ("Is there a cat in this image? Please answer yes or no.", "No", "No, there is not."),  # "no" in first 4 chars -> right
    ],
    ("existence", "0002", False): [
        ("Is there a bus in this image? Please answer yes or no.", "Yes", "Yes."),  # "yes" in "yes." -> right
        ("Is there a car in this image? Please answer yes or no.", "No", "There is no car"),  # "ther" -> other -> wrong
    ],
    ("artwork", "10002", True): [
        ("Does this artwork exist in the form of painting? Please answer yes or no.", "Yes", "yes"),
        ("Does this artwork exist in the form of glassware? Please answer yes or no.", "No", "Nope"),  # "nope"[:4] has "no"
    ],
    ("artwork", "10003", True): [
        ("Is this artwork created by Monet? Please answer yes or no.", "No", "I think yes"),  # "i th" -> other
        ("Is this artwork created by Manet? Please answer yes or no.", "Yes", "no"),  # wrong
    ],
    ("code_reasoning", "0020", False): [
        ("Is a python code shown in the picture? Please answer yes or no.", "Yes", "yes"),
        ("Is a c++ code shown in the picture? Please answer yes or no.", "No", "NO"),  # lowercased first -> right
    ],
}
# The fixture has 3 of the 14 subtasks: runs declare them (the official headline needs all ten perception ones).
MME_SUBTASKS = ("existence", "artwork", "code_reasoning")
OPTIONS = {"mme": {"subtasks": MME_SUBTASKS}}
# existence: acc 3/4 = 75, acc+ 1/2 (0001) = 50 -> 125; artwork: acc 2/4 = 50, acc+ 1/2 = 50 -> 100
MME_EXPECTED = {"perception": 225.0, "cognition": 200.0, "existence": 125.0, "artwork": 100.0, "code_reasoning": 200.0}


def mme_predictions(ids_in_order: list[str]) -> dict[str, str]:
    """Samples come out in (category, file, line) order; map them to the predictions above."""
    preds = [p for key in sorted(MME_FILES) for (_, _, p) in MME_FILES[key]]
    return dict(zip(ids_in_order, preds))


def write_mme(root: str) -> None:
    for (cat, stem, split), rows in MME_FILES.items():
        base = f"{root}/{MME_RELEASE}/{cat}"
        image_dir, qa_dir = (f"{base}/images", f"{base}/questions_answers_YN") if split else (base, base)
        ext = ".png" if cat == "code_reasoning" else ".jpg"
        _image(f"{image_dir}/{stem}{ext}")
        os.makedirs(qa_dir, exist_ok=True)
        with open(f"{qa_dir}/{stem}.txt", "w") as fh:
            fh.writelines(f"{q}\t{a}\n" for q, a, _ in rows)


def write_llava_mme(root: str) -> list[dict]:
    """LLaVA's question file (question_id = category/image, the suffix in the text)."""
    rows = []
    for (cat, stem, split), qa in sorted(MME_FILES.items()):
        ext = ".png" if cat == "code_reasoning" else ".jpg"
        image = f"{cat}/images/{stem}{ext}" if split else f"{cat}/{stem}{ext}"
        for q, _, _ in qa:
            rows.append({"question_id": f"{cat}/{stem}{ext}", "image": image, "category": cat,
                         "text": q + "\nAnswer the question using a single word or phrase."})
    _jsonl(f"{root}/mme/llava_mme.jsonl", rows)
    return rows


# ---------------------------------------------------------------------------------- POPE
POPE_ROWS = {  # split -> [(label, prediction)]; question ids restart at 1 in every split
    "adversarial": [
        ("yes", "Yes, there is a dog."),  # TP
        ("yes", "No."),  # FN
        ("no", "No, there is not."),  # TN
        ("no", "Yes"),  # FP
    ],  # acc 50, P 50, R 50, F1 50, yes 50
    "popular": [
        ("yes", "There is not a cat in the image."),  # "not" -> no: FN
        ("no", "NO"),  # only No/not/no count -> yes: FP
        ("yes", "yes"),  # TP
        ("no", "no"),  # TN
        ("yes", "Yes. No doubt."),  # first sentence only -> yes: TP
    ],  # acc 3/5 = 60, P 2/3, R 2/3, F1 66.67, yes 60
    "random": [("yes", "yes"), ("no", "no"), ("yes", "yes")],  # all right: F1 100, yes 66.67
}
POPE_EXPECTED = {"adversarial": 50.0, "popular": 200.0 / 3, "random": 100.0, "f1_mean": (50.0 + 200.0 / 3 + 100.0) / 3}
POPE_PRED = {f"{s}/{i + 1}": p for s, rows in POPE_ROWS.items() for i, (_, p) in enumerate(rows)}


def write_pope(root: str) -> None:
    for split, rows in POPE_ROWS.items():
        lines = []
        for i, (label, _) in enumerate(rows):
            image = f"COCO_val2014_{i:012d}.jpg"
            _image(f"{root}/pope/val2014/{image}")
            lines.append({"question_id": i + 1, "image": image, "text": f"Is there a thing {i} in the image?", "label": label})
        _jsonl(f"{root}/pope/coco/coco_pope_{split}.json", lines)


# ---------------------------------------------------------------------------------- ScienceQA
SQA_PROBLEMS = {  # pid -> (has image, choices, answer index, hint, prediction)
    "1": (True, ["iron", "wood", "glass"], 0, "Look at the picture.", "A"),  # right
    "2": (True, ["short", "tall"], 1, "", "B. tall"),  # "X. " prefix -> right
    "3": (True, ["cat", "dog", "cow"], 2, "", "The answer is C."),  # right
    "4": (True, ["up", "down"], 0, "", "The answer is A. The answer is A."),  # found twice -> failed
    "5": (False, ["a", "b", "c", "d"], 3, "", "D"),  # right, but text-only
    "7": (True, ["hot", "cold"], 0, "", "C"),  # a letter beyond the 2 choices -> wrong (not "failed")
    "8": (True, ["red", "blue", "green"], 1, "", "I think it is B"),  # no rule matches -> failed
    "6": (True, ["x", "y"], 0, "", None),  # train split: never run
}
SQA_PRED = {pid: p[4] for pid, p in SQA_PROBLEMS.items() if p[4] is not None}
SQA_EXPECTED = {"img_accuracy": 50.0, "accuracy": 400.0 / 7, "failed": 2}  # IMG 3/6; all 4/7


def write_sqa(root: str) -> None:
    problems = {}
    for pid, (img, choices, ans, hint, _) in SQA_PROBLEMS.items():
        problems[pid] = {"question": f"Question {pid}?", "choices": choices, "answer": ans, "hint": hint,
                         "image": "image.png" if img else None, "task": "closed choice",
                         "split": "test" if pid != "6" else "train"}
        if img:
            _image(f"{root}/scienceqa/images/{'train' if pid == '6' else 'test'}/{pid}/image.png")
    _json(f"{root}/scienceqa/problems.json", problems)
    _json(f"{root}/scienceqa/pid_splits.json", {"train": ["6"], "val": [], "test": ["1", "2", "3", "4", "5", "7", "8"]})


# ---------------------------------------------------------------------------------- TextVQA
TEXTVQA = {  # question_id -> (image_id, question, ten answers, prediction, score)
    100: ("img1", "What brand is it?", ["coca cola"] * 6 + ["coca-cola"] * 2 + ["cola"] * 2, "Coca-Cola.", 1.0),
    # "-" between letters becomes a space, the final "." goes: every answer is matched >= 3 times
    101: ("img1", "How many bottles?", ["two"] * 2 + ["2"] + ["3"] * 7, "two", 0.9),
    # "two" -> "2": 3 annotators said 2; leave-one-out (3 * 2/3 + 7 * 1) / 10 = 0.9
    102: ("img2", "What is the price?", ["3.50"] * 2 + ["$3.50"] * 4 + ["3.5"] * 4, "3.50", 0.6),
    # "." before a digit stays; "$" is no punctuation here: (2 * 1/3 + 8 * 2/3) / 10 = 0.6
}
TEXTVQA_OCR = {"img1": ["coca", "cola", "2"], "img2": []}
TEXTVQA_PRED = {str(k): v[3] for k, v in TEXTVQA.items()}
TEXTVQA_EXPECTED = 100.0 * (1.0 + 0.9 + 0.6) / 3


def write_textvqa(root: str, llava_file: bool = True) -> None:
    data = [{"question_id": qid, "image_id": img, "question": q, "answers": ans, "set_name": "val"}
            for qid, (img, q, ans, _, _) in TEXTVQA.items()]
    _json(f"{root}/textvqa/TextVQA_0.5.1_val.json", {"dataset_name": "textvqa", "data": data})
    _json(f"{root}/textvqa/TextVQA_Rosetta_OCR_v0.2_val.json",
          {"data": [{"image_id": k, "ocr_tokens": v} for k, v in TEXTVQA_OCR.items()]})
    for img in TEXTVQA_OCR:
        _image(f"{root}/textvqa/train_images/{img}.jpg")
    if llava_file:
        rows = []
        for qid, (img, q, _, _, _) in TEXTVQA.items():
            ocr = TEXTVQA_OCR[img]
            text = q.lower() + ("\nReference OCR token: " + ", ".join(ocr) if ocr else "")
            rows.append({"question_id": img, "image": f"{img}.jpg",
                         "text": text + "\nAnswer the question using a single word or phrase."})
        _jsonl(f"{root}/textvqa/llava_textvqa_val_v051_ocr.jsonl", rows)


# ---------------------------------------------------------------------------------- VQAv2
VQAV2 = {  # question_id -> (image_id, ten answers, prediction, score)
    1: (11, ["2"] * 10, "Two.", 1.0),  # EvalAI: "two." -> "two" -> "2"
    2: (11, ["yes"] * 10, "Yes, it is", 0.0),
    3: (12, ["the dog"] * 4 + ["dog"] * 2 + ["puppy"] * 4, "the dog", 0.6),
    # the prediction loses its article, the humans' answers keep theirs (only punctuation is
    # processed on them): "dog" matches 2 of 10 -> (2 * 1/3 + 8 * 2/3) / 10 = 0.6
    4: (12, ["1,000"] * 3 + ["1000"] * 7, "1,000", 1.0),  # digit,digit comma removed on both sides
}
VQAV2_PRED = {str(k): v[2] for k, v in VQAV2.items()}
VQAV2_EXPECTED = 65.0


def write_vqav2(root: str) -> None:
    _json(f"{root}/vqav2/v2_OpenEnded_mscoco_val2014_questions.json",
          {"questions": [{"question_id": q, "image_id": v[0], "question": f"Question {q}?"} for q, v in VQAV2.items()]})
    _json(f"{root}/vqav2/v2_mscoco_val2014_annotations.json", {"annotations": [
        {"question_id": q, "image_id": v[0], "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                                                          for i, a in enumerate(v[1])], "multiple_choice_answer": v[1][0]}
        for q, v in VQAV2.items()]})
    for img in (11, 12):
        _image(f"{root}/vqav2/val2014/COCO_val2014_{img:012d}.jpg")
    # test-dev: 2 questions; the full test2015 list has a third one the submission must carry as ""
    _json(f"{root}/vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json",
          {"questions": [{"question_id": 5001, "image_id": 21, "question": "What?"},
                         {"question_id": 5002, "image_id": 21, "question": "Who?"}]})
    _json(f"{root}/vqav2/v2_OpenEnded_mscoco_test2015_questions.json",
          {"questions": [{"question_id": q, "image_id": 21, "question": "?"} for q in (5001, 5002, 5003)]})
    _image(f"{root}/vqav2/test2015/COCO_test2015_{21:012d}.jpg")


def write_all(root: str) -> str:
    for writer in (write_gqa, write_mme, write_pope, write_sqa, write_textvqa, write_vqav2):
        writer(root)
    return root


def snapshot(directory: str) -> dict:
    """Every file under ``directory`` with its bytes (to prove a failed run changed nothing)."""
    out = {}
    for base, _, files in os.walk(directory):
        for f in files:
            with open(os.path.join(base, f), "rb") as fh:
                out[os.path.relpath(os.path.join(base, f), directory)] = fh.read()
    return out
