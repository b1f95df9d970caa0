"""The files on disk: keys and types per benchmark, the lookups LLaVA's evaluation scripts do, and
determinism of the whole tree. A small dataset (96 px / patch 8) keeps this fast."""

import hashlib
import json
from pathlib import Path

import pytest

from adsc_testbed import GridSpec, TestbedConfig, generate
from adsc_testbed.dataset import signature
from adsc_testbed.scene import Scene

SHORT = "\nAnswer the question using a single word or phrase."
CFG = dict(num_images=10, num_train=12, spec=GridSpec(96, 8, 2))


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    generate(root, TestbedConfig(seed=0, **CFG))
    return root


def test_deterministic_bytes(out, tmp_path):
    generate(tmp_path / "again", TestbedConfig(seed=0, **CFG))
    first, again = tree_digest(out), tree_digest(tmp_path / "again")
    assert first == again and any(k.endswith(".png") for k in first)
    generate(tmp_path / "other", TestbedConfig(seed=1, **CFG))
    other = tree_digest(tmp_path / "other")
    assert other["gqa/data/testdev_balanced_questions.json"] != first["gqa/data/testdev_balanced_questions.json"]


def test_manifest_layout_points_at_files(out):
    m = json.loads((out / "manifest.json").read_text())
    assert m["grid"]["vision_tokens"] == 144 and m["seed"] == 0
    for bench, paths in m["layout"].items():
        for rel in paths.values():
            assert (out / rel).exists(), (bench, rel)
    assert all(m["counts"][b]["images"] == 10 for b in ("gqa", "mme", "pope", "scienceqa", "textvqa", "vqav2"))


def test_gqa(out):
    qs = json.loads((out / "gqa/data/testdev_balanced_questions.json").read_text())
    choices = json.loads((out / "gqa/data/testdev_balanced_choices.json").read_text())
    graphs = json.loads((out / "gqa/data/testdev_balanced_sceneGraphs.json").read_text())
    rows = jsonl(out / "gqa/llava_gqa_testdev_balanced.jsonl")
    assert [r["question_id"] for r in rows] == list(qs)
    for r in rows:
        q = qs[r["question_id"]]
        assert r["text"] == q["question"] + SHORT and r["image"] == q["imageId"] + ".png"
        assert (out / "gqa/data/images" / r["image"]).is_file()
        assert {"imageId", "question", "answer", "fullAnswer", "isBalanced", "types", "groups", "semantic",
                "entailed", "equivalent", "annotations"} <= set(q)
        assert q["isBalanced"] is True and isinstance(r["question_id"], str) and r["question_id"].isdigit()
        assert q["answer"] == q["answer"].lower() and q["answer"] in choices[r["question_id"]]["valid"]
        assert all({"operation", "argument", "dependencies"} <= set(s) for s in q["semantic"])
        assert q["imageId"] in graphs


def test_mme(out):
    base = out / "mme/MME_Benchmark_release_version"
    rows = jsonl(out / "mme/llava_mme.jsonl")
    assert len(rows) == 20
    for yes, no in zip(rows[::2], rows[1::2]):  # two questions per image, adjacent
        assert yes["question_id"] == no["question_id"] == yes["image"]
        category, name = yes["question_id"].split("/")
        assert category == yes["category"] and (base / category / name).is_file()
        # what LLaVA's convert_answer_to_mme.py does to find the ground truth
        gt = dict(line.split("\t") for line in (base / category / name.replace(".png", ".txt")).read_text().splitlines())
        for row, want in ((yes, "Yes"), (no, "No")):
            prompt = row["text"].replace("Answer the question using a single word or phrase.", "").strip()
            assert gt[prompt + " Please answer yes or no."] == want
    assert {r["category"] for r in rows} == {"existence", "count", "position", "color", "OCR"}
    assert rows[0]["question_id"] == "existence/0001.png"


def test_pope(out):
    rows = jsonl(out / "pope/llava_pope_test.jsonl")
    ids = [r["question_id"] for r in rows]
    assert len(ids) == len(set(ids))  # eval_pope.py indexes the question file by id
    for split in ("adversarial", "popular", "random"):
        labels = jsonl(out / f"pope/coco/coco_pope_{split}.json")
        mine = [r for r in rows if r["category"] == split]
        assert [lab["question_id"] for lab in labels] == list(range(1, len(labels) + 1))
        assert len(mine) == len(labels) == 60  # 10 images x 6, balanced
        for r, lab in zip(mine, labels):  # eval_pope.py pairs them by position
            assert set(lab) == {"question_id", "image", "text", "label"}
            assert r["text"] == lab["text"] + SHORT and r["image"] == lab["image"]
            assert (out / "pope/val2014" / lab["image"]).is_file()
        assert [lab["label"] for lab in labels].count("yes") == 30


def test_scienceqa(out):
    base = out / "scienceqa"
    problems = json.loads((base / "problems.json").read_text())
    splits = json.loads((base / "pid_splits.json").read_text())
    items = json.loads((base / "llava_test_CQM-A.json").read_text())
    assert splits["test"] == list(problems) == [it["id"] for it in items]
    for it in items:
        p = problems[it["id"]]
        assert {"question", "choices", "answer", "hint", "image", "split", "lecture", "solution"} <= set(p)
        assert isinstance(p["answer"], int) and 0 <= p["answer"] < len(p["choices"]) <= 5
        assert (base / "images/test" / it["image"]).is_file() and it["image"] == f"{it['id']}/image.png"
        human, gpt = it["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt" and gpt["value"] == "ABCDE"[p["answer"]]
        lines = human["value"].replace("<image>", "").strip().split("\n")
        if p["hint"]:
            assert lines.pop(0) == f"Context: {p['hint']}"
        assert lines[0] == p["question"]
        assert lines[1:] == [f"{'ABCDE'[i]}. {c}" for i, c in enumerate(p["choices"])]


def prompt_processor(prompt):
    """The question eval_textvqa.py recovers from a prompt (its 'Reference OCR token' branch)."""
    lines = prompt.split("\n")
    if "Reference OCR token: " in prompt and len(lines) == 3:
        return (lines[1] if prompt.startswith("Reference OCR token:") else lines[0]).lower()
    assert len(lines) == 2
    return lines[0].lower()


def test_textvqa(out):
    ann = json.loads((out / "textvqa/TextVQA_0.5.1_val.json").read_text())
    ocr = {d["image_id"]: d for d in json.loads((out / "textvqa/TextVQA_Rosetta_OCR_v0.2_val.json").read_text())["data"]}
    assert ann["dataset_version"] == "0.5.1"
    by_key = {(a["image_id"], a["question"].lower()): a for a in ann["data"]}
    rows = jsonl(out / "textvqa/llava_textvqa_val_v051_ocr.jsonl")
    assert len(by_key) == len(ann["data"]) == len(rows)
    for r in rows:
        a = by_key[(r["question_id"], prompt_processor(r["text"]))]
        assert len(a["answers"]) == 10 and all(isinstance(x, str) for x in a["answers"])
        assert (out / "textvqa/train_images" / r["image"]).is_file()
        tokens = ocr[a["image_id"]]["ocr_tokens"]
        assert r["text"].split("\n")[1] == "Reference OCR token: " + ", ".join(tokens)
        assert len(ocr[a["image_id"]]["ocr_info"]) == len(tokens)


def test_vqav2(out):
    qs = json.loads((out / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    ann = json.loads((out / "vqav2/v2_mscoco_val2014_annotations.json").read_text())
    rows = jsonl(out / "vqav2/llava_vqav2_mscoco_val2014.jsonl")
    assert qs["task_type"] == "Open-Ended" and qs["data_subtype"] == "val2014"
    assert [q["question_id"] for q in qs["questions"]] == [a["question_id"] for a in ann["annotations"]] \
        == [r["question_id"] for r in rows]
    for q, a, r in zip(qs["questions"], ann["annotations"], rows):
        assert q["question_id"] // 1000 == q["image_id"] == a["image_id"]
        assert len(a["answers"]) == 10 and {"answer", "answer_confidence", "answer_id"} == set(a["answers"][0])
        assert a["answer_type"] == "number" and a["multiple_choice_answer"].isdigit()
        assert r["text"] == q["question"] + SHORT
        assert (out / "vqav2/val2014" / r["image"]).is_file() and r["image"] == f"COCO_val2014_{q['image_id']:012d}.png"


def test_train_json_and_disjoint_splits(out):
    records = json.loads((out / "train/llava_instruct_synthetic.json").read_text())
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        assert set(r) == {"id", "image", "conversations"} and (out / "train" / r["image"]).is_file()
        conv = r["conversations"]
        # one question per record: several about one image leak each other's answers (instruct.py)
        assert [c["from"] for c in conv] == ["human", "gpt"]
        assert conv[0]["value"].startswith("<image>\n") and "<image>" not in conv[1]["value"]
    families = {r["id"].split("-")[1] for r in records}
    assert families == {"gqa", "mme", "pope", "scienceqa", "textvqa", "vqav2", "caption"}
    captions = json.loads((out / "train/llava_caption_synthetic.json").read_text())
    assert captions == [r for r in records if r["id"].split("-")[1] == "caption"] and captions
    # the drills: multi-turn (drawn leak-free, questions/drill.py), each skill in its own file only
    for family in ("drill", "drill_read", "drill_count"):
        drills = json.loads((out / f"train/llava_{family}_synthetic.json").read_text())
        scenes_with = len({r["image"] for r in records}) if family != "drill_read" else \
            sum(1 for d in jsonl(out / "annotations/train.jsonl") if d["texts"])  # a scene without strings has none
        assert len(drills) == scenes_with > 0
        for r in drills:
            conv = r["conversations"]
            assert r["id"].endswith(f"-{family}-0") and (out / "train" / r["image"]).is_file()
            assert [c["from"] for c in conv] == ["human", "gpt"] * (len(conv) // 2) and len(conv) >= 2
            assert conv[0]["value"].startswith("<image>\n") and not any("<image>" in c["value"] for c in conv[1:])
    train = {signature(Scene.from_dict(d)) for d in jsonl(out / "annotations/train.jsonl")}
    for bench in ("gqa", "mme", "pope", "scienceqa", "textvqa", "vqav2"):
        test = {signature(Scene.from_dict(d)) for d in jsonl(out / f"annotations/{bench}.jsonl")}
        assert not train & test


def test_cli_generate_only(tmp_path, capsys, adsc_main):
    rc = adsc_main(["experiment", "--generate-only", "--out", str(tmp_path / "d"), "--num-images", "5", "--num-train", "5",
               "--image-size", "96", "--patch-size", "8", "--benchmarks", "pope", "gqa"])
    assert rc == 0 and "12x12 = 144 vision tokens" in capsys.readouterr().out
    assert (tmp_path / "d/pope/coco/coco_pope_random.json").is_file() and not (tmp_path / "d/mme").exists()
