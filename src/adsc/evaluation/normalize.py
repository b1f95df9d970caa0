"""Answer normalisation and VQA accuracy, as the official evaluators compute them.

Two evaluators exist and LLaVA-1.5 uses both:

* ``EvalAIAnswerProcessor`` (MMF / pythia ``m4c_evaluator``): LLaVA runs it over TextVQA
  predictions and answers, and over VQAv2 predictions before they go to the EvalAI server.
* the VQA server's own ``vqaEval.py``: prediction processed again, the ten human answers only
  punctuation-processed, and only when they disagree.

Quirks of the reference code are reproduced on purpose, because the goal is the same number
as the official script (each is covered by a test):

* ``PERIOD_STRIP`` is written ``(?!<=\\d)(\\.)(?!\\d)``: the intended look-*behind* is a
  look-*ahead* for the literal text ``<=``, so a period is removed whenever no digit follows
  it ("3." -> "3", "3.5" kept, "a.b" -> "ab").
* ``PERIOD_STRIP.sub("", text, re.UNICODE)`` passes the flag as ``count``: at most
  ``re.UNICODE == 32`` periods are removed.
* whether a punctuation mark is deleted or replaced by a space is decided once per mark for
  the whole string (any occurrence next to a space, or any digit,digit comma, deletes all).
* in the EvalAI processor commas are already deleted by the first step, so the comma rule
  never fires there.
"""

from __future__ import annotations

import re

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're", "theres": "there's",
    "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll",
    "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've",
    "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll",
    "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}
NUMBER_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
              "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ("a", "an", "the")
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")

PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: see the module docstring
COMMA_STRIP_EVALAI = re.compile(r"(?<=\d)(\,)+(?=\d)")  # m4c_evaluator's form
COMMA_STRIP_VQA = re.compile(r"(\d)(\,)(\d)")  # vqaEval.py's form
PERIOD_CAP = re.UNICODE  # == 32, the count the reference passes by accident


def process_punctuation(text: str, comma_strip: re.Pattern = COMMA_STRIP_EVALAI) -> str:
    out = text
    has_digit_comma = comma_strip.search(text) is not None
    for p in PUNCTUATION:
        # The test reads the *input* string, the edit applies to the running output: as upstream.
        if (p + " " in text or " " + p in text) or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out, count=PERIOD_CAP)


def process_digit_article(text: str) -> str:
    words = []
    for word in text.lower().split():
        word = NUMBER_MAP.get(word, word)
        if word not in ARTICLES:
            words.append(word)
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def evalai_normalize(answer: str) -> str:
    """EvalAIAnswerProcessor.__call__: what TextVQA and LLaVA's VQAv2 submission apply."""
    text = answer.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text, COMMA_STRIP_EVALAI))


def _leave_one_out(answers: list[str], candidate: str) -> float:
    """Mean over the 10 annotators of min(1, matches among the other 9 / 3)."""
    scores = []
    for i in range(len(answers)):
        matches = sum(1 for j, a in enumerate(answers) if j != i and a == candidate)
        scores.append(min(1.0, matches / 3.0))
    return sum(scores) / len(scores)


def textvqa_accuracy(prediction: str, answers: list[str]) -> float:
    """m4c TextVQAAccuracyEvaluator: prediction and all ten answers EvalAI-normalised."""
    if not answers:
        raise ValueError("no ground-truth answers")
    return _leave_one_out([evalai_normalize(a) for a in answers], evalai_normalize(prediction))


def vqav2_accuracy(prediction: str, answers: list[str]) -> float:
    """The VQA server's vqaEval.py on one question.

    The prediction is what LLaVA submits: ``evalai_normalize(model output)``; the server then
    processes it again (punctuation + digits/articles). The human answers are
    punctuation-processed only when they are not unanimous -- upstream behaviour, kept.
    """
    if not answers:
        raise ValueError("no ground-truth answers")
    submitted = evalai_normalize(prediction)
    res = submitted.replace("\n", " ").replace("\t", " ").strip()
    res = process_digit_article(process_punctuation(res, COMMA_STRIP_VQA))
    gts = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if len(set(gts)) > 1:
        gts = [process_punctuation(a, COMMA_STRIP_VQA) for a in gts]
    return _leave_one_out(gts, res)
