"""What every benchmark reader provides: samples to run, and a scorer for their predictions."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
MULTIPLE_CHOICE = "\nAnswer with the option's letter from the given choices directly."


class DataError(ValueError):
    """Bad or missing benchmark input; the message names the file or the question id."""


@dataclass(frozen=True)
class Sample:
    id: str  # unique within the benchmark; the key of the prediction file
    image: str | None  # absolute path, None for text-only questions (some of ScienceQA)
    text: str  # the user turn without the image placeholder: question + protocol suffix
    max_new_tokens: int = 128


IMAGE_EXTS = (".jpg", ".png", ".jpeg")


class Benchmark:
    """Reads the official files under ``root`` on construction and checks them.

    Subclasses set ``samples`` (in file order) and implement ``score``.
    """

    name = ""
    files_help = ""  # where the official files go, shown in errors and the README
    max_new_tokens = 128  # LLaVA-1.5's model_vqa_loader default

    def __init__(self, root: str):
        self.root = root
        self.samples: list[Sample] = []

    # -------------------------------------------------------------- helpers for subclasses
    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def image(self, *parts: str) -> str:
        """Path of an image; the official names say .jpg, converted or synthetic sets may use .png."""
        p = self.path(*parts)
        if os.path.exists(p):
            return p
        stem = os.path.splitext(p)[0]
        return next((stem + ext for ext in IMAGE_EXTS if os.path.exists(stem + ext)), p)

    def require(self, *parts: str) -> str:
        p = self.path(*parts)
        if not os.path.exists(p):
            raise DataError(f"{self.name}: missing {p}\n  expected layout: {self.files_help}")
        return p

    def load_json(self, *parts: str):
        with open(self.require(*parts), encoding="utf-8") as fh:
            return json.load(fh)

    def load_jsonl(self, *parts: str) -> list[dict]:
        out = []
        path = self.require(*parts)
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise DataError(f"{self.name}: {path} line {n} is not JSON: {err}") from None
        return out

    def check_images(self) -> None:
        """Fail before any generation when an image is missing, naming the question id."""
        missing = [s for s in self.samples if s.image is not None and not os.path.isfile(s.image)]
        if missing:
            first = missing[0]
            raise DataError(
                f"{self.name}: image for question {first.id!r} not found: {first.image}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )

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
