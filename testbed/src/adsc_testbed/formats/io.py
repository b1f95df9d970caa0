"""Byte-stable file writing: the determinism tests compare the bytes of everything written."""

from __future__ import annotations

import json
from pathlib import Path

from ..render import png_bytes, render
from ..scene import Scene


def write_json(path: Path, obj, indent: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=indent) + ("\n" if indent else ""), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def save_image(scene: Scene, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(render(scene)))
    return path
