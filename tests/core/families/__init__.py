"""One case per model family for the engine's oracle tests (tests/core/test_families.py).

A family joins the oracle suite with one module here that defines ``CASE`` (or ``CASES``): how to
build its tiny random model and a few samples in its own token layout. The oracle tests are
written once, against references that need no knowledge of the family.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

import adsc
from adsc.tiny import PAD


@dataclass(frozen=True, eq=False)  # hashed by identity: the harness caches one model per case
class FamilyCase:
    """A family's tiny model and samples.

    ``samples()`` gives at least two samples, each the model's keyword inputs at batch 1
    (``input_ids`` (1, T) and that sample's image tensors); one of them should hold several images
    (or frames), and one none where the family allows text-only rows. ``per_token`` names the
    (1, T) inputs that are padded like ``input_ids``; every other tensor is concatenated on dim 0
    in sample order (how the models match images to samples). ``pass_positions`` is False where
    the model computes its own positions (M-RoPE), so the harness must not pass 1-D ones.
    """

    name: str
    build: Callable[[str], nn.Module]
    samples: Callable[[], list[dict]]
    per_token: tuple[str, ...] = ("mm_token_type_ids", "token_type_ids")
    pass_positions: bool = True
    config: adsc.CompressionConfig = field(default_factory=lambda: adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5))
    lora_targets: str = r".*language_model.*\.(q|k|v|o|gate|up|down)_proj"
    collate: Callable[[list[dict], str], dict] | None = None

    def batch(self, samples: list[dict], side: str = "left") -> dict:
        """The samples padded into one batch (``attention_mask`` and, if passed, ``position_ids``)."""
        if self.collate is not None:
            return self.collate(samples, side)
        width = max(s["input_ids"].shape[1] for s in samples)
        out = {"input_ids": _pad([s["input_ids"] for s in samples], width, PAD, side),
               "attention_mask": _pad([torch.ones_like(s["input_ids"]) for s in samples], width, 0, side)}
        for key in self.per_token:
            if any(key in s for s in samples):
                out[key] = _pad([s.get(key, torch.zeros_like(s["input_ids"])) for s in samples], width, 0, side)
        for key in {k for s in samples for k in s} - set(out) - set(self.per_token):
            out[key] = torch.cat([s[key] for s in samples if key in s])
        if self.pass_positions:
            out["position_ids"] = (out["attention_mask"].cumsum(1) - 1).clamp(min=0)
        return out


def _pad(rows: list[torch.Tensor], width: int, value: int, side: str) -> torch.Tensor:
    padded = []
    for row in rows:
        fill = torch.full((1, width - row.shape[1]), value, dtype=row.dtype)
        padded.append(torch.cat([fill, row] if side == "left" else [row, fill], 1))
    return torch.cat(padded)


def _discover() -> list[FamilyCase]:
    cases = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases += getattr(module, "CASES", [getattr(module, "CASE", None)])
    return [c for c in cases if c is not None]


CASES: list[FamilyCase] = _discover()
