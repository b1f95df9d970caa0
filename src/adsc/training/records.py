"""Read and check LLaVA-Instruct records (the mix-665K JSON format).

A record is ``{"id", "image"?, "conversations": [{"from": "human"|"gpt", "value": str}, ...]}``.
Checking happens once, up front, so a broken record is reported by id before any GPU time is
spent. Normalisation follows LLaVA's ``preprocess_multimodal``: the ``<image>`` tag is moved to
the front of the first human turn, followed by a newline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

IMAGE_TAG = "<image>"
HUMAN = ("human", "user")
ASSISTANT = ("gpt", "assistant")


class MalformedRecord(ValueError):
    """A record that cannot be trained on; the message names the record and the problem."""


@dataclass(frozen=True)
class Record:
    id: str
    image: str | None
    rounds: tuple[tuple[str, str], ...]  # (question, answer); the first question holds "<image>\n"


def load_json(path: str) -> list:
    """A JSON list, or JSON lines (one record per line)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"training data not found: {path}")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is neither a JSON list nor JSON lines: {err}") from None
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a JSON list of records, found {type(data).__name__}")
    return data


def parse_record(raw, index: int) -> Record:
    name = f"record #{index}"
    if not isinstance(raw, dict):
        raise MalformedRecord(f"{name}: expected an object, found {type(raw).__name__}")
    if "id" in raw:
        name = f"record {raw['id']!r} (#{index})"
    rid = str(raw.get("id", f"#{index}"))
    image = raw.get("image")
    if isinstance(image, list) and len(image) == 1:
        image = image[0]
    if image is not None and (not isinstance(image, str) or not image):
        raise MalformedRecord(f"{name}: 'image' must be one relative path, found {image!r}")
    turns = raw.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise MalformedRecord(f"{name}: 'conversations' must be a non-empty list")
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or "from" not in turn:
            raise MalformedRecord(f"{name}: turn {i} must be {{'from': ..., 'value': str}}, found {turn!r:.80}")
        if turn["from"] not in HUMAN + ASSISTANT:
            raise MalformedRecord(f"{name}: turn {i} comes from {turn['from']!r}; expected 'human' or 'gpt'")
    if turns[0]["from"] in ASSISTANT:
        turns = turns[1:]  # as LLaVA does: a leading assistant turn has no question to answer
    for i, turn in enumerate(turns):
        expected = HUMAN if i % 2 == 0 else ASSISTANT
        if turn["from"] not in expected:
            raise MalformedRecord(f"{name}: turns must alternate human/gpt; turn {i} is {turn['from']!r}")
    if len(turns) % 2:
        raise MalformedRecord(f"{name}: the last human turn has no answer")
    if not turns:
        raise MalformedRecord(f"{name}: no human/gpt exchange")
    tags = sum(t["value"].count(IMAGE_TAG) for t in turns)
    if any(IMAGE_TAG in t["value"] for t in turns if t["from"] in ASSISTANT):
        raise MalformedRecord(f"{name}: {IMAGE_TAG} inside an assistant answer")
    if image is None and tags:
        raise MalformedRecord(f"{name}: {IMAGE_TAG} in the text but no 'image' field")
    if tags > 1:
        raise MalformedRecord(f"{name}: {tags} {IMAGE_TAG} tags; one image per record is supported")
    questions = [t["value"] for t in turns[0::2]]
    answers = [t["value"] for t in turns[1::2]]
    for k, q in enumerate(questions):
        questions[k] = q.replace(IMAGE_TAG, "").strip() if IMAGE_TAG in q else q
    if image is not None:
        # LLaVA puts the image first in the first turn, whatever turn the tag was in (or none)
        questions[0] = IMAGE_TAG + "\n" + questions[0]
    return Record(rid, image, tuple(zip(questions, answers)))


def parse_records(raw: list, skip_malformed: bool) -> tuple[list[Record], list[str]]:
    """Parsed records and the problems of those skipped; raises on the first few problems unless skipping."""
    records, problems = [], []
    for i, item in enumerate(raw):
        try:
            records.append(parse_record(item, i))
        except MalformedRecord as err:
            problems.append(str(err))
    if problems and not skip_malformed:
        shown = "\n  ".join(problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise MalformedRecord(
            f"{len(problems)} malformed record(s) in the training data:\n  {shown}{more}\n"
            "fix them, or pass --skip-malformed to leave them out (they are counted in the run summary)"
        )
    return records, problems
