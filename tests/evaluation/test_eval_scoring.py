"""Scores on fabricated sets in the official formats, against hand-computed values."""

import json

import pytest
from eval_fixtures import (
    GQA_EXPECTED,
    GQA_PRED,
    MME_EXPECTED,
    MME_SUBTASKS,
    POPE_EXPECTED,
    POPE_PRED,
    SQA_EXPECTED,
    SQA_PRED,
    TEXTVQA,
    TEXTVQA_EXPECTED,
    TEXTVQA_PRED,
    VQAV2,
    VQAV2_EXPECTED,
    VQAV2_PRED,
    mme_predictions,
    write_llava_mme,
    write_mme,
    write_textvqa,
)

from adsc.evaluation.benchmarks import (
    GQA,
    MME,
    POPE,
    DataError,
    ScienceQA,
    TextVQA,
    VQAv2,
    headline,
    load_benchmark,
)
from adsc.evaluation.benchmarks.mme import mme_answer
from adsc.evaluation.benchmarks.pope import pope_answer
from adsc.evaluation.benchmarks.sqa import sqa_letter
from adsc.evaluation.benchmarks.textvqa import question_of
from adsc.evaluation.normalize import textvqa_accuracy, vqav2_accuracy


def test_gqa_exact_match_over_balanced(data_root):
    bench = GQA(data_root)
    assert [s.id for s in bench.samples] == ["201", "202", "203", "204", "205"]  # unbalanced ones are run too
    assert bench.samples[0].text == "What color is the car?\nAnswer the question using a single word or phrase."
    scores = bench.score(GQA_PRED)
    assert scores["accuracy"] == pytest.approx(GQA_EXPECTED) and scores["n"] == 4
    assert headline("gqa", scores) == pytest.approx(GQA_EXPECTED)


def test_gqa_every_question_needs_a_prediction(data_root):
    preds = dict(GQA_PRED)
    del preds["204"]
    with pytest.raises(DataError, match="'204'"):
        GQA(data_root).score(preds)
    with pytest.raises(DataError, match="unknown question id '999'"):
        GQA(data_root).score({**GQA_PRED, "999": "x"})


def test_mme_acc_and_acc_plus(data_root):
    bench = MME(data_root, subtasks=MME_SUBTASKS)
    scores = bench.score(mme_predictions([s.id for s in bench.samples]))
    for task in ("existence", "artwork", "code_reasoning"):
        assert scores["subtasks"][task]["score"] == pytest.approx(MME_EXPECTED[task]), task
    assert scores["perception"] == pytest.approx(MME_EXPECTED["perception"])
    assert scores["cognition"] == pytest.approx(MME_EXPECTED["cognition"])
    assert bench.samples[0].image.endswith("artwork/images/10002.jpg")


def test_mme_parse():
    assert [mme_answer(t) for t in ("Yes", "no", "Yes, it is", "Nope", "I think yes", "", "NO.")] == \
        ["yes", "no", "yes", "no", "other", "other", "no"]


def test_mme_llava_question_file(tmp_path):
    root = str(tmp_path)
    write_mme(root)
    rows = write_llava_mme(root)
    bench = MME(root, subtasks=MME_SUBTASKS)
    assert [s.text for s in bench.samples] == [r["text"] for r in rows]  # LLaVA's prompts, verbatim
    assert bench.samples[0].id == "artwork/10002.jpg#0" and bench.samples[1].id == "artwork/10002.jpg#1"
    scores = bench.score(mme_predictions([s.id for s in bench.samples]))
    assert scores["perception"] == pytest.approx(MME_EXPECTED["perception"])
    # a question the answer files do not know is reported with its id
    rows[3]["text"] = "Is this unknown? Please answer yes or no."
    with open(f"{root}/mme/llava_mme.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    with pytest.raises(DataError, match="artwork/10003.jpg"):
        MME(root, subtasks=MME_SUBTASKS)


def test_pope_per_split_and_mean_f1(data_root):
    bench = POPE(data_root)
    assert len({s.id for s in bench.samples}) == 12  # ids 1.. in every split stay distinct
    scores = bench.score(POPE_PRED)
    for split in ("adversarial", "popular", "random"):
        assert scores[split]["f1"] == pytest.approx(POPE_EXPECTED[split]), split
    assert scores["adversarial"]["accuracy"] == 50.0 and scores["adversarial"]["yes_ratio"] == 50.0
    assert scores["popular"]["accuracy"] == pytest.approx(60.0)
    assert scores["popular"]["precision"] == pytest.approx(200 / 3) and scores["popular"]["recall"] == pytest.approx(200 / 3)
    assert scores["random"]["yes_ratio"] == pytest.approx(200 / 3)
    assert scores["f1_mean"] == pytest.approx(POPE_EXPECTED["f1_mean"])


def test_pope_parse_quirks():
    assert pope_answer("No, there is not.") == "no"
    assert pope_answer("There is not a cat") == "no"
    assert pope_answer("NO") == "yes"  # only "No", "not", "no" count: upstream behaviour
    assert pope_answer("Yes. No doubt.") == "yes"  # only the first sentence is read
    assert pope_answer("no.") == "no"


def test_scienceqa_letters_and_img_accuracy(data_root):
    bench = ScienceQA(data_root)
    assert [s.id for s in bench.samples] == ["1", "2", "3", "4", "5", "7", "8"]
    first = bench.samples[0]
    assert first.text == ("Context: Look at the picture.\nQuestion 1?\nA. iron\nB. wood\nC. glass\n"
                          "Answer with the option's letter from the given choices directly.")
    assert first.image.endswith("scienceqa/images/test/1/image.png") and first.max_new_tokens == 1024
    assert bench.samples[4].image is None  # text-only question
    assert bench.samples[1].text.startswith("Question 2?\nA. short")  # empty hint: no Context line
    scores = bench.score(SQA_PRED)
    assert scores["img_accuracy"] == pytest.approx(SQA_EXPECTED["img_accuracy"])
    assert scores["accuracy"] == pytest.approx(SQA_EXPECTED["accuracy"])
    assert scores["failed"] == SQA_EXPECTED["failed"] and scores["n_img"] == 6


def test_scienceqa_letter_rules():
    assert sqa_letter("B") == "B"
    assert sqa_letter("C. glass") == "C"
    assert sqa_letter("I pick... The answer is D.") == "D"
    assert sqa_letter("The answer is A. The answer is A.") is None  # must occur once
    assert sqa_letter("The answer is AB") == "A"  # upstream's unescaped "." matches any character
    assert sqa_letter("The answer is B") is None
    assert sqa_letter("b") is None


def test_textvqa_llava_prompts(data_root):
    bench = TextVQA(data_root)
    assert [s.id for s in bench.samples] == ["100", "101", "102"]
    assert bench.samples[0].text == ("what brand is it?\nReference OCR token: coca, cola, 2\n"
                                     "Answer the question using a single word or phrase.")
    scores = bench.score(TEXTVQA_PRED)
    assert scores["accuracy"] == pytest.approx(TEXTVQA_EXPECTED)
    for qid, (_, _, answers, pred, expected) in TEXTVQA.items():
        assert textvqa_accuracy(pred, answers) == pytest.approx(expected), qid


def test_textvqa_prompts_from_rosetta_ocr(tmp_path):
    write_textvqa(str(tmp_path), llava_file=False)
    bench = TextVQA(str(tmp_path))
    assert bench.samples[0].text == ("What brand is it?\nReference OCR token: coca, cola, 2\n"
                                     "Answer the question using a single word or phrase.")
    assert bench.samples[2].text == "What is the price?\nAnswer the question using a single word or phrase."
    assert bench.score(TEXTVQA_PRED)["accuracy"] == pytest.approx(TEXTVQA_EXPECTED)


def test_textvqa_question_prompt_processor():
    prompt = "What is it?\nReference OCR token: a, b\nAnswer the question using a single word or phrase."
    assert question_of(prompt) == "what is it?"
    assert question_of("Reference OCR token: a\nWhat?\nAnswer.") == "what?"
    with pytest.raises(DataError):
        question_of("one line only")


def test_textvqa_unknown_question_reported(tmp_path):
    write_textvqa(str(tmp_path))
    path = tmp_path / "textvqa" / "llava_textvqa_val_v051_ocr.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["text"] = "how old is it?\nAnswer the question using a single word or phrase."
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="how old is it"):
        TextVQA(str(tmp_path))


def test_vqav2_val_accuracy(data_root):
    bench = VQAv2(data_root)
    scores = bench.score(VQAV2_PRED)
    assert scores["accuracy"] == pytest.approx(VQAV2_EXPECTED)
    for qid, (_, answers, pred, expected) in VQAV2.items():
        assert vqav2_accuracy(pred, answers) == pytest.approx(expected), qid
    assert bench.samples[0].image.endswith("vqav2/val2014/COCO_val2014_000000000011.jpg")


def test_vqav2_test_dev_submission(data_root, tmp_path):
    bench = load_benchmark("vqav2", data_root, split="test-dev")
    assert [s.id for s in bench.samples] == ["5001", "5002"]
    assert bench.score({"5001": "Two", "5002": "x"}) == {"submission_only": True, "n": 2}
    n = bench.write_submission({"5001": "Two", "5002": "A red car."}, str(tmp_path / "sub.json"))
    rows = json.loads((tmp_path / "sub.json").read_text())
    assert n == 3 and rows == [{"question_id": 5001, "answer": "2"}, {"question_id": 5002, "answer": "red car"},
                               {"question_id": 5003, "answer": ""}]


def test_missing_image_reported_with_id(tmp_path):
    from eval_fixtures import write_gqa

    write_gqa(str(tmp_path))
    (tmp_path / "gqa" / "images" / "n2.jpg").unlink()
    bench = GQA(str(tmp_path))
    with pytest.raises(DataError, match=r"question '203' not found.*n2.jpg \(and 1 more"):
        bench.check_images()


def test_missing_files_name_the_layout(tmp_path):
    with pytest.raises(DataError, match="testdev_balanced_questions.json"):
        GQA(str(tmp_path))
    with pytest.raises(DataError, match="unknown benchmark"):
        load_benchmark("mmbench", str(tmp_path))
