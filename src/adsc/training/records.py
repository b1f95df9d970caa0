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
    index: int = -1  # position in the data file, for messages


class DataFileError(ValueError):
    """The training data file cannot be read as records; the message names the file and the fix."""


class ImageOutsideFolder(ValueError):
    """Records whose image path leaves the image folder (absolute, or climbing out with ``..``)."""


def load_json(path: str) -> list:
    """A JSON list, or JSON lines (one record per line)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"training data not found: {path}; pass the JSON file with --data")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as err:
        raise DataFileError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); "
                            "save it as UTF-8 JSON") from None
    except OSError as err:
        raise DataFileError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as whole:
        data = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataFileError(
                    f"{path} is neither a JSON list ({whole.msg} at line {whole.lineno} column {whole.colno}) "
                    f"nor JSON lines (line {number}: {err.msg} at column {err.colno}); fix that line, or write "
                    "the records as one JSON list"
                ) from None
    if not isinstance(data, list):
        raise DataFileError(f"{path} must hold a JSON list of records (or one record per line), found a "
                            f"{type(data).__name__}; put the records in a list [{{...}}, ...]")
    return data


def confined_path(folder: str | None, image: str) -> str | None:
    """``image`` joined to ``folder`` (the current directory when None), or None when it leaves it.

    Lexical, on purpose: ``..`` and absolute paths are refused, but a symlink inside the folder is
    followed, since whoever made the folder put it there (datasets are often linked in that way).
    """
    root = os.path.abspath(folder or os.curdir)
    joined = os.path.normpath(os.path.join(root, image))
    return joined if os.path.commonpath([root, joined]) == root else None


def check_image_paths(records: list[Record], folder: str | None, data_file: str) -> None:
    """Refuse, before any training, records whose image path is outside the image folder."""
    outside = [r for r in records if r.image is not None and confined_path(folder, r.image) is None]
    if not outside:
        return
    shown = "; ".join(f"record {r.id!r} (#{r.index}): {r.image!r}" for r in outside[:5])
    more = f"; ... and {len(outside) - 5} more" if len(outside) > 5 else ""
    where = f"--image-folder {folder}" if folder else "the current directory (no --image-folder)"
    raise ImageOutsideFolder(
        f"{data_file}: {len(outside)} image path(s) lead outside {where}: {shown}{more}. Fix the paths, pass the "
        "--image-folder they are relative to, or pass --allow-outside-image-folder if you mean it"
    )


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
    return Record(rid, image, tuple(zip(questions, answers)), index)


def parse_records(raw: list, skip_malformed: bool, source: str = "the training data") -> tuple[list[Record], list[str]]:
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
            f"{len(problems)} malformed record(s) in {source}:\n  {shown}{more}\n"
            "fix them, or pass --skip-malformed to leave them out (they are counted in the run summary)"
        )
    return records, problems
