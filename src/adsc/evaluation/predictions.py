"""Prediction files: one jsonl per benchmark (and shard), appended as answers are produced.

Line 1 is a header ``{"header": {"fingerprint": {...}, "shard": [i, n]}}``; every other line
is ``{"id", "text", "prompt"}``. A rerun resumes: it keeps the complete lines, cuts off a
half-written last line (a kill mid-write), and skips the ids already there. A file whose
fingerprint (model, compression, benchmark, prompt and decoding settings) differs from the
current run is refused rather than mixed.
"""

from __future__ import annotations

import json
import os
import tempfile

from .benchmarks import DataError

FORMAT = 1


def shard_path(base: str, shard: tuple[int, int] | None) -> str:
    if not shard or shard[1] == 1:
        return base
    root, ext = os.path.splitext(base)
    return f"{root}.shard{shard[0]}of{shard[1]}{ext}"


def _diff(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def read_predictions(path: str, repair: bool = False) -> tuple[dict, dict[str, dict]]:
    """(header, id -> record). A final line without its newline is ignored (and cut if ``repair``)."""
    with open(path, "rb") as fh:
        data = fh.read()
    end = data.rfind(b"\n") + 1  # everything after the last newline is a half-written line
    if repair and end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    try:
        lines = data[:end].decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; not an adsc prediction file? (--overwrite starts it again)") from None
    if not lines:
        return {}, {}
    try:
        header = json.loads(lines[0])["header"]
        if not isinstance(header, dict):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataError(f"{path}: first line is not a prediction-file header; not an adsc prediction file?") from None
    records = {}
    for n, line in enumerate(lines[1:], 2):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}: line {n} is corrupt (not JSON) in the middle of the file") from None
        if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get("text"), str):
            raise DataError(f"{path}: line {n} is no prediction record (needs id and text); not an adsc prediction file?")
        records[str(rec["id"])] = rec
    return header, records


def check_compatible(path: str, fingerprint: dict, shard: tuple[int, int] | None = None) -> None:
    """Refuse (without touching the file) when ``path`` holds another run's predictions."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    header, _ = read_predictions(path)
    if not header:  # only a half-written header line: the writer starts the file again
        return
    theirs = header.get("fingerprint", {})
    differs = _diff(theirs, fingerprint)
    if differs or header.get("shard") != (list(shard) if shard else None):
        what = ", ".join(differs) if differs else "shard"
        raise DataError(
            f"{path} was written by another run (different {what}); refusing to mix predictions. "
            "Use another --output-dir, or --overwrite to start this benchmark again."
        )


class PredictionWriter:
    """Appends records durably (flush + fsync per batch) after checking the header."""

    def __init__(self, path: str, fingerprint: dict, shard: tuple[int, int] | None = None):
        self.path = path
        self.header = {"format": FORMAT, "fingerprint": fingerprint, "shard": list(shard) if shard else None}
        self.done: dict[str, dict] = {}
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        check_compatible(path, fingerprint, shard)
        if os.path.exists(path) and os.path.getsize(path) > 0:
            header, self.done = read_predictions(path, repair=True)
            if not header:  # only a half-written header line was there
                self._write_header()
        else:
            self._write_header()

    def _write_header(self) -> None:
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"header": self.header}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        for r in records:
            self.done[str(r["id"])] = r


def merge_shards(base: str, n: int, order: list[str] | None = None) -> dict[str, dict]:
    """Combine ``base``'s n shard files into ``base`` (headers must agree); returns the records."""
    header, merged = None, {}
    for i in range(n):
        path = shard_path(base, (i, n))
        if not os.path.exists(path):
            raise DataError(f"shard {i}/{n} has no prediction file {path}; run that shard first")
        h, recs = read_predictions(path)
        if header is None:
            header = h
        elif _diff(h.get("fingerprint", {}), header.get("fingerprint", {})):
            differs = ", ".join(_diff(h["fingerprint"], header["fingerprint"]))
            raise DataError(f"{path} comes from another run (different {differs})")
        for k, rec in recs.items():
            if k in merged and merged[k]["text"] != rec["text"]:
                raise DataError(f"question {k!r} has different predictions in two shards")
            merged[k] = rec
    listed = set(order or ())
    keys = [k for k in (order or []) if k in merged] + [k for k in merged if k not in listed]
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(base)), prefix=os.path.basename(base) + ".", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"header": {**header, "shard": None}}) + "\n")
        for k in keys:
            fh.write(json.dumps(merged[k], ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, base)  # atomic: a reader never sees a half-merged file
    return merged
