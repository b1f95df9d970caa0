"""What every benchmark reader provides: samples to run, and a scorer for their predictions.

The helpers here are how a reader touches its files, so that every bad input is named the
same way: the file, the record (index or id), what was expected, and the fix.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
MULTIPLE_CHOICE = "\nAnswer with the option's letter from the given choices directly."


class EvaluationInputError(ValueError):
    """A bad argument or input of ``adsc eval``; the message names the argument or file and the fix."""


class DataError(EvaluationInputError):
    """Bad or missing benchmark input; the message names the file and the record or question id."""


@dataclass(frozen=True)
class Sample:
    id: str  # unique within the benchmark; the key of the prediction file
    image: str | None  # absolute path, None for text-only questions (some of ScienceQA)
    text: str  # the user turn without the image placeholder: question + protocol suffix
    max_new_tokens: int = 128


IMAGE_EXTS = (".jpg", ".png", ".jpeg")
_KIND_NAMES = {dict: "a JSON object", list: "a JSON array", str: "a string", int: "an integer", bool: "true/false",
               type(None): "null", float: "a number"}
OUTSIDE_FIX = "fix the data file, or pass --allow-outside-data-root (allow_outside_root=True) if you mean it"


def kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)


def is_kind(value, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:  # JSON true is no question id or count
        return False
    return isinstance(value, kinds)


def check_image_file(path: str) -> str | None:
    """Why ``path`` cannot be used as an image (None if it can): missing, unreadable or corrupt.

    JPEGs are decoded at 1/8 scale (PIL's draft mode still reads every entropy-coded byte, so a
    truncated file fails) -- a few milliseconds an image; other formats are decoded in full.
    """
    from PIL import Image

    if not os.path.isfile(path):
        return "not found"
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        return f"cannot be decoded ({type(err).__name__}: {err})"
    return None


class Benchmark:
    """Reads the official files under ``root`` on construction and checks them.

    Subclasses set ``samples`` (in file order) and implement ``score``. Image paths taken from
    data files must stay inside the benchmark's image folder unless ``allow_outside_root``.
    """

    name = ""
    files_help = ""  # where the official files go, shown in errors and the README
    max_new_tokens = 128  # LLaVA-1.5's model_vqa_loader default

    def __init__(self, root: str, allow_outside_root: bool = False):
        self.root = root
        self.allow_outside_root = allow_outside_root
        self.samples: list[Sample] = []

    # -------------------------------------------------------------- helpers for subclasses
    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def image_in(self, folder: str, name: str, where: str) -> str:
        """``folder/name`` for a name read from a data file (``where`` names the record).

        Refused when it leaves ``folder`` (an absolute name, ``..``): a data file must not make
        the run read any file on the machine. The check is on the path as written (symlinked
        image folders are fine). The official names say .jpg; converted sets may use .png.
        """
        if not isinstance(name, str) or not name:
            raise DataError(f"{self.name}: {where}: image name {name!r} is not a file name")
        p = os.path.normpath(os.path.join(folder, name))
        base = os.path.normpath(folder)
        if not self.allow_outside_root and (os.path.isabs(name) or not p.startswith(base + os.sep)):
            raise DataError(f"{self.name}: {where}: image {name!r} lies outside {base}; {OUTSIDE_FIX}")
        if os.path.exists(p):
            return p
        stem = os.path.splitext(p)[0]
        return next((stem + ext for ext in IMAGE_EXTS if os.path.exists(stem + ext)), p)

    def image(self, *parts: str) -> str:
        """Image under the data root from trusted parts (the last one read from a data file)."""
        return self.image_in(self.path(*parts[:-1]), parts[-1], "/".join(parts))

    def require(self, *parts: str) -> str:
        p = self.path(*parts)
        if not os.path.isfile(p):
            raise DataError(f"{self.name}: missing {p}\n  expected layout: {self.files_help}")
        return p

    def load_json(self, *parts: str, kind=dict):
        """The JSON file's content, which must be ``kind`` (dict or list) at the top."""
        path = self.require(*parts)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as err:
            raise DataError(f"{self.name}: {path} is not valid JSON (line {err.lineno}, column {err.colno}: "
                            f"{err.msg}); download the official file again") from None
        except UnicodeDecodeError:
            raise DataError(f"{self.name}: {path} is not UTF-8 text; download the official file again") from None
        if not is_kind(data, kind):
            raise DataError(f"{self.name}: {path} holds {kind_name(type(data))}, expected {kind_name(kind)} at the top; "
                            f"is it the right file? expected layout: {self.files_help}")
        return data

    def text_lines(self, path: str) -> list[tuple[int, str]]:
        """(line number, line) of the non-blank lines of a UTF-8 text file."""
        try:
            with open(path, encoding="utf-8") as fh:
                return [(n, line) for n, line in enumerate(fh, 1) if line.strip()]
        except UnicodeDecodeError:
            raise DataError(f"{self.name}: {path} is not UTF-8 text; download the official file again") from None

    def load_jsonl(self, *parts: str) -> list[dict]:
        """The objects of a JSON-lines file (blank lines skipped); each line must be an object."""
        out = []
        path = self.require(*parts)
        for n, line in self.text_lines(path):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{self.name}: {path} line {n} is not JSON ({err}); fix or remove that line") from None
            if not isinstance(row, dict):
                raise DataError(f"{self.name}: {path} line {n} holds {kind_name(type(row))}, expected a JSON object")
            out.append(row)
        return out

    def field(self, record, key: str, path: str, where: str, kind=str, default=...):
        """``record[key]`` checked: the record must be an object holding ``key`` of type ``kind``.

        ``where`` names the record ("record 3", "question '201'"); ``default`` makes the key optional.
        """
        if not isinstance(record, dict):
            raise DataError(f"{self.name}: {path}: {where} is {kind_name(type(record))}, expected a JSON object")
        if key not in record:
            if default is not ...:
                return default
            raise DataError(f"{self.name}: {path}: {where} has no {key!r}; is it the official file? "
                            f"expected layout: {self.files_help}")
        value = record[key]
        if not is_kind(value, kind):
            raise DataError(f"{self.name}: {path}: {where} has {key!r} = {value!r}, expected {kind_name(kind)}")
        return value

    def records(self, data, path: str, key: str | None = None) -> list[dict]:
        """The list of objects in ``data`` (or ``data[key]``): a non-empty JSON array of objects."""
        items = self.field(data, key, path, "the top level", list) if key else data
        if not isinstance(items, list):
            raise DataError(f"{self.name}: {path} holds {kind_name(type(items))}, expected a JSON array")
        if not items:
            raise DataError(f"{self.name}: {path} has no {key or 'records'}: the headline needs them; "
                            "download the official file again")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DataError(f"{self.name}: {path}: record {i} is {kind_name(type(item))}, expected a JSON object")
        return items

    def check_images(self, workers: int = 8) -> None:
        """Fail before any generation when an image is missing or corrupt, naming the question id.

        Every distinct image is opened and decoded once (threads: PIL decodes without the GIL);
        a second call on the same samples does nothing.
        """
        if getattr(self, "_images_checked", None) == len(self.samples):
            return
        paths = list(dict.fromkeys(s.image for s in self.samples if s.image is not None))
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
            problems = {p: why for p, why in zip(paths, pool.map(check_image_file, paths)) if why}
        bad = [s for s in self.samples if s.image in problems]
        if bad:
            first = bad[0]
            raise DataError(
                f"{self.name}: image for question {first.id!r} {problems[first.image]}: {first.image}"
                + (f" (and {len(bad) - 1} more questions with bad images)" if len(bad) > 1 else "")
                + "; restore the file from the official download"
            )
        self._images_checked = len(self.samples)

    def predictions_for(self, predictions: dict[str, str]) -> dict[str, str]:
        """Every sample needs a prediction and every prediction a sample (ids named if not)."""
        known = {s.id for s in self.samples}
        unknown = [k for k in predictions if k not in known]
        if unknown:
            raise DataError(f"{self.name}: prediction for unknown question id {unknown[0]!r} ({len(unknown)} unknown)")
        missing = [s.id for s in self.samples if s.id not in predictions]
        if missing:
            raise DataError(f"{self.name}: no prediction for question id {missing[0]!r} ({len(missing)} missing)")
        return predictions

    def score(self, predictions: dict[str, str]) -> dict:
        raise NotImplementedError
