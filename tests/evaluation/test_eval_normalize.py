"""The EvalAI normalisation, quirks of the reference included (see adsc.evaluation.normalize)."""

import pytest

from adsc.evaluation.normalize import evalai_normalize, process_punctuation, textvqa_accuracy, vqav2_accuracy


@pytest.mark.parametrize("raw, expected", [
    ("Hello, World?", "hello world"),  # lowercase, "," and "?" removed first
    ("It's red", "it 's red"),  # "'s" split off
    ("Three dogs", "3 dogs"),  # number words
    ("none", "0"),
    ("ten", "10"),
    ("eleven", "eleven"),  # the table stops at ten
    ("A cat on the mat", "cat on mat"),  # articles dropped
    ("an apple", "apple"),
    ("dont know", "don't know"),  # contractions table
    ("Isnt it", "isn't it"),
    ("black-and-white", "black and white"),  # mark not next to a space -> replaced by a space
    ("yes - no", "yes no"),  # next to a space -> removed
    ("3.5", "3.5"),  # period before a digit kept
    ("3.", "3"),
    ("e.g.", "eg"),
    ("1,000", "1000"),
    ("  two\tdogs\n", "2 dogs"),
])
def test_evalai_normalize(raw, expected):
    assert evalai_normalize(raw) == expected


def test_quirk_punctuation_decided_once_per_string():
    # one "/" next to a space makes every "/" vanish, even the one between letters
    assert evalai_normalize("x/y / z") == "xy z"
    assert evalai_normalize("x/y") == "x y"


def test_quirk_mistyped_lookbehind():
    # The reference meant "a period not after a digit"; it wrote a lookahead for "<=", so a
    # period after a digit is removed as well ("5." -> "5"), and only a following digit saves it.
    assert evalai_normalize("5.") == "5"
    assert evalai_normalize("5.5") == "5.5"


def test_quirk_period_cap_of_32():
    # re.UNICODE (32) passed as sub's count: periods beyond the 32nd survive
    text = "x" + ".x" * 40
    assert process_punctuation(text) == "x" * 33 + ".x" * 8


def test_vqa_accuracy_leave_one_out():
    answers = ["cat"] * 2 + ["dog"] * 8
    # each of 2 "cat" annotators left out: 1 match -> 1/3; each of 8 others: 2 matches -> 2/3
    assert textvqa_accuracy("cat", answers) == pytest.approx((2 / 3 + 8 * 2 / 3) / 10)
    assert textvqa_accuracy("dog", answers) == 1.0
    assert textvqa_accuracy("bird", answers) == 0.0
    assert textvqa_accuracy("cat", ["cat"] * 3 + ["x"] * 7) == pytest.approx((3 * 2 / 3 + 7) / 10)


def test_vqav2_unanimous_answers_are_not_processed():
    # unanimous human answers are compared raw (upstream skips their processing)
    assert vqav2_accuracy("Two", ["2"] * 10) == 1.0
    assert vqav2_accuracy("black-and-white", ["black and white"] * 10) == 1.0
    assert vqav2_accuracy("yes", ["Yes"] * 10) == 0.0  # raw "Yes" never equals a processed prediction
    assert vqav2_accuracy("yes", ["Yes"] * 9 + ["yes"]) == pytest.approx(0.3)  # disagreeing: still punctuation-only
