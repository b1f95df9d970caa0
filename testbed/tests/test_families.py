"""Answers of every family on the hand-built scenes of scenes.py, checked against hand-written tables."""

import re
from collections import Counter

import numpy as np
import pytest

from adsc_testbed.questions import caption, drill, gqa, mme, pope, sqa, textvqa, vqav2
from adsc_testbed.world import CATEGORIES, VOCAB
from testbed_scenes import scene_one, scene_two

SEEDS = range(40)


def rng(i):
    return np.random.default_rng(i)


# ---------------------------------------------------------------------------------------- GQA
def test_gqa_candidates_hand_checked():
    got = {q.question: q.answer for qs in gqa.candidates(scene_one()).values() for q in qs}
    expected = {
        "What color is the square to the right of the red circle?": "blue",
        "What color is the square below the red circle?": "red",
        "What shape is the red object below the blue square?": "square",
        "Is the red circle to the left or to the right of the blue square?": "left",
        "Is the green triangle above or below the blue square?": "below",
        "Is the green triangle to the right of the red square?": "yes",
        "Is the red circle below the red square?": "no",
        "Is the blue square small or large?": "large",
        "Is the red circle small or large?": "small",
    }
    for q, a in expected.items():
        assert got.get(q) == a, q
    ambiguous = [
        "What color is the square to the left of the green triangle?",  # both squares are
        "What shape is the red object to the left of the blue square?",  # circle and square are
        "Is the red circle to the left or to the right of the red square?",  # same column
        "What color is the circle to the right of the blue square?",  # no such circle
    ]
    for q in ambiguous:
        assert q not in got, q


def test_gqa_sampled_questions_are_candidates_and_fully_typed():
    cands = {q.question: q.answer for qs in gqa.candidates(scene_one()).values() for q in qs}
    answers = Counter()
    for i in SEEDS:
        qs = gqa.gqa_questions(scene_one(), rng(i))
        assert 1 <= len(qs) <= 4 and len({q.question for q in qs}) == len(qs)
        for q in qs:
            assert cands[q.question] == q.answer
            assert set(q.extra["types"]) == {"structural", "semantic", "detailed"}
            answers[q.answer] += q.kind == "verifyRel"
    assert answers["yes"] > 0 and answers["no"] > 0  # verify questions are balanced


# ---------------------------------------------------------------------------------------- MME
def pairs(scene, subtask):
    out = set()
    for i in SEEDS:
        yes, no = mme.mme_questions(scene, subtask, rng(i), VOCAB)
        assert (yes.answer, no.answer) == ("Yes", "No")
        out.add((yes.question, no.question))
    return out


def test_mme_existence():
    for yes, no in pairs(scene_one(), "existence"):
        assert re.fullmatch(r"Is there a (circle|square|triangle) in this image\?", yes)
        assert re.fullmatch(r"Is there a (star|diamond|cross) in this image\?", no)


def test_mme_count():
    yes_ok = {"one circle", "two squares", "one triangle", "one red circle", "one blue square", "one red square",
              "one green triangle"}
    no_ok = {"two circles", "one square", "three squares", "two triangles", "two red circles", "two blue squares",
             "two red squares", "two green triangles"}
    seen = set()
    for yes, no in pairs(scene_one(), "count"):
        y = re.fullmatch(r"Is there a total of (.+) in this image\?", yes).group(1)
        n = re.fullmatch(r"Is there a total of (.+) in this image\?", no).group(1)
        assert y in yes_ok and n in no_ok, (y, n)
        seen.add(y)
    assert "two squares" in seen


def test_mme_position():
    got = pairs(scene_two(), "position")
    allowed = {
        ("Is the red circle on the left of the blue square in this image?",
         "Is the red circle on the right of the blue square in this image?"),
        ("Is the blue square on the right of the red circle in this image?",
         "Is the blue square on the left of the red circle in this image?"),
    }
    assert got and got <= allowed


def test_mme_color_binds_colour_to_shape():
    present = {"red circle", "blue square", "red square", "green triangle"}
    for yes, no in pairs(scene_one(), "color"):
        y = re.fullmatch(r"Is there an? (\w+ \w+) in this image\?", yes).group(1)
        n = re.fullmatch(r"Is there an? (\w+ \w+) in this image\?", no).group(1)
        assert y in present and n not in present
        assert y.split()[1] == n.split()[1]  # same shape, other colour


def test_mme_ocr_near_miss():
    got = pairs(scene_one(), "OCR")
    for yes, no in got:
        if "black" in yes:
            assert yes == 'Is the black text in this image "CAT"?'
            assert no in {'Is the black text in this image "CAR"?', 'Is the black text in this image "HAT"?'}
        else:
            assert yes == 'Is the red text in this image "MILK"?'
            word = re.search(r'"(\w+)"', no).group(1)
            assert word != "MILK" and len(word) == 4
    assert mme.mme_questions(scene_two(), "OCR", rng(0), VOCAB) == []  # no text, no OCR pair


# --------------------------------------------------------------------------------------- POPE
def hand_stats():
    return pope.CategoryStats(
        freq=Counter({("yellow", "star"): 10, ("red", "circle"): 9, ("purple", "cross"): 8, ("orange", "diamond"): 7}),
        cooc=Counter({(("red", "circle"), ("orange", "diamond")): 5, (("blue", "square"), ("yellow", "cross")): 3,
                      (("red", "square"), ("yellow", "cross")): 1, (("green", "triangle"), ("purple", "star")): 1,
                      (("yellow", "star"), ("purple", "circle")): 9}))  # not about this scene: ignored


def test_pope_negatives_hand_checked():
    s, st = scene_one(), hand_stats()
    assert pope.negatives(s, st, "popular", 3, rng(0)) == [("yellow", "star"), ("purple", "cross"), ("orange", "diamond")]
    assert pope.negatives(s, st, "adversarial", 3, rng(0)) == [("orange", "diamond"), ("yellow", "cross"),
                                                               ("purple", "star")]
    for i in SEEDS:
        assert not set(pope.negatives(s, st, "random", 3, rng(i))) & s.categories()


def test_pope_questions_alternate_and_share_positives():
    qs = pope.pope_questions(scene_one(), hand_stats(), rng(1))
    assert len(qs) == 18
    by_split = {sp: [q for q in qs if q.extra["split"] == sp] for sp in pope.SPLITS}
    for split, group in by_split.items():
        assert [q.extra["label"] for q in group] == ["yes", "no"] * 3
        assert [q.answer for q in group] == ["Yes", "No"] * 3
    positives = [[q.question for q in g if q.extra["label"] == "yes"] for g in by_split.values()]
    assert positives[0] == positives[1] == positives[2]
    assert by_split["popular"][1].question == "Is there a yellow star in the image?"
    assert by_split["adversarial"][1].question == "Is there an orange diamond in the image?"


# -------------------------------------------------------------------------------------- VQAv2
def test_vqav2_counts_hand_checked():
    got = dict(vqav2.candidates(scene_one()))
    assert got["How many squares are there?"] == 2
    assert got["How many red objects are there?"] == 2
    assert got["How many objects are there in the image?"] == 4
    assert got["How many yellow objects are there?"] == 0
    assert got["How many blue squares are there?"] == 1
    for i in SEEDS:
        for q in vqav2.vqav2_questions(scene_one(), rng(i)):
            assert str(got[q.question]) == q.answer


WORDS = {w: str(i) for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                          "nine", "ten"))}


@pytest.mark.parametrize("n", range(11))
def test_vqav2_ten_answers_keep_truth_majority(n):
    disagreement = 0
    for i in SEEDS:
        answers = vqav2.ten_answers(n, rng(i))
        assert len(answers) == 10 and [a["answer_id"] for a in answers] == list(range(1, 11))
        norm = Counter(WORDS.get(a["answer"], a["answer"]) for a in answers)
        top = norm.most_common(2)
        assert top[0][0] == str(n) and top[0][1] >= 4 and (len(top) == 1 or top[1][1] < top[0][1])
        disagreement += len(norm) > 1
    assert disagreement > 0  # annotators do disagree, like VQAv2's


# ------------------------------------------------------------------------------------ TextVQA
def test_textvqa_hand_checked():
    got = dict(textvqa.candidates(scene_one()))
    assert got == {"What does the black text say?": "CAT", "What does the red text say?": "MILK",
                   "What word is written under the blue square?": "CAT"}
    assert textvqa.ocr_tokens(scene_one(), rng(0), noise=0.0) == ["CAT", "MILK"]  # reading order
    for i in SEEDS:
        for q in textvqa.textvqa_questions(scene_one(), rng(i), noise=0.5):
            assert q.answer == got[q.question].lower()
            assert sum(a.lower() == q.answer for a in q.extra["answers"]) >= 7
            assert len(q.extra["ocr_tokens"]) == 2
    assert textvqa.textvqa_questions(scene_two(), rng(0), 0.1) == []


# ---------------------------------------------------------------------------------- ScienceQA
def test_sqa_templates_hand_checked():
    s = scene_one()
    teams = {"red circle": "Team A", "red square": "Team A", "blue square": "Team B", "green triangle": "Team B"}
    # (colour, shape) -> (objects of that shape with the colour, without it)
    split = {"squares": {"red": (1, 1), "blue": (1, 1), "green": (0, 2)},
             "circles": {"red": (1, 0), "blue": (0, 1), "green": (0, 1)},
             "triangles": {"red": (0, 1), "blue": (0, 1), "green": (1, 0)}}
    seen = set()
    for i in range(80):
        (q,) = sqa.sqa_questions(s, rng(i))
        right = q.extra["choices"][q.extra["answer_index"]]
        assert q.answer == "ABCD"[q.extra["answer_index"]]
        seen.add(q.kind)
        if q.kind == "team":
            name = re.fullmatch(r"Which team does the (.+) belong to\?", q.question).group(1)
            assert right == teams[name]
        elif q.kind == "points":
            color, value = re.search(r"each (\w+) object is worth (\d) points", q.extra["hint"]).groups()
            shapes = re.search(r"all the (\w+) worth", q.question).group(1)
            with_c, without = split[shapes][color]
            assert right == str(with_c * int(value) + without)
            assert q.extra["choices"] == sorted(q.extra["choices"], key=int)
        elif q.kind == "label":
            assert q.question == 'Which object has the word "CAT" written under it?' and right == "blue square"
        else:
            names = {f"{c} {sh}" for c, sh in s.categories()}
            assert right in names and not set(q.extra["choices"]) - {right} & names
    assert seen == set(sqa.TEMPLATES)


def test_world_categories():
    assert len(CATEGORIES) == 36 and len(set(CATEGORIES)) == 36


def test_caption_lists_categories_in_fixed_order_with_counts():
    (qa,) = caption.caption_questions(scene_one())
    assert qa.question == "What objects are in the image?"
    assert qa.answer == "one red circle, one red square, one blue square, one green triangle"
    two = scene_one()
    two.objects[3].color, two.objects[3].shape = "red", "circle"
    assert caption.listing(two) == "two red circles, one red square, one blue square"


def test_filtered_listings_name_present_attributes_only():
    for i in SEEDS:
        full, by_color, by_shape = caption.caption_questions(scene_one(), rng(i))
        color = by_color.question.split()[1]
        shape = by_shape.question.split()[1]
        assert by_color.answer == caption.listing_of(scene_one().matching(color=color)) != ""
        assert all(color in part for part in by_color.answer.split(", "))
        assert by_shape.answer and shape in {"circles", "squares", "triangles"}


def test_drill_answers_are_existence_and_turns_leak_nothing():
    s = scene_one()  # red circle, red square, blue square, green triangle
    present = {"category": {"red circle", "red square", "blue square", "green triangle"},
               "shape": {"circle", "square", "triangle"}, "color": {"red", "blue", "green"}}
    answers = []
    for i in SEEDS:
        qas = drill.drill_questions(s, hand_stats(), rng(i))
        assert 1 <= len(qas) <= 10 and len({q.question for q in qas}) == len(qas)  # no subject asked twice
        for q in qas:
            m = re.fullmatch(r"Is there an? (.+?)( object)? in (this|the) image\?", q.question)
            assert m, q.question
            assert q.answer == ("Yes" if m.group(1) in present[q.kind] else "No"), q.question
            assert (q.kind == "color") == bool(m.group(2))
        answers.append("".join(q.answer[0] for q in qas))
    flat = "".join(answers)
    assert 0.35 < flat.count("Y") / len(flat) < 0.65
    assert len(set(answers)) > 30  # a coin per turn, not a fixed alternation or a fixed count per record
    assert len({a.count("Y") for a in answers}) > 3


def test_reading_drill_asks_every_string_once_without_ocr_tokens():
    s = scene_one()  # "CAT" (black) under the blue square, "MILK" (red) free
    accepted = {"What does the black text say?": "cat", "What word is written under the blue square?": "cat",
                "What does the red text say?": "milk"}
    wordings = set()
    for i in SEEDS:
        qas = drill.reading_drill(s, rng(i))
        assert sorted(q.answer for q in qas) == ["cat", "milk"]  # each string exactly once
        for q in qas:
            assert accepted[q.question] == q.answer and "OCR" not in q.question
            wordings.add(q.question)
    assert wordings == set(accepted)  # both wordings of the label occur (a coin)
    assert drill.reading_drill(scene_two(), rng(0)) == []  # no strings, no drill


def test_counting_drill_hand_checked_and_never_complete():
    s = scene_one()  # red: circle + square; blue: square; green: triangle
    truth = {"red objects": 2, "blue objects": 1, "green objects": 1, "yellow objects": 0, "purple objects": 0,
             "orange objects": 0, "squares": 2, "circles": 1, "triangles": 1, "stars": 0, "diamonds": 0, "crosses": 0}
    for i in SEEDS:
        qas = drill.counting_drill(s, rng(i))
        assert len(qas) == 8 and len({q.question for q in qas}) == 8
        for q in qas:
            m = re.fullmatch(r"How many (.+) are there\?", q.question)
            assert m and q.answer == str(truth[m.group(1)]), q.question
        # at most five of the six colours and of the six shapes: no total gives the last answer away
        assert max(Counter(q.kind for q in qas).values()) <= 5
