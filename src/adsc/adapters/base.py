"""What the engine needs to know about an architecture, and nothing more.

An adapter finds three things on a loaded model: the module whose forward sees ``input_ids``
(where vision-token positions are read), the decoder layers of the language model, and the
image grids behind each run of vision tokens. Everything else is shared engine code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class UnsupportedModelError(TypeError):
    pass


@dataclass(frozen=True)
class VisionSpan:
    """One image's vision tokens in one sample: ``start`` in the sequence, token ``grid`` (rows, cols)."""

    start: int
    grid: tuple[int, int]

    @property
    def length(self) -> int:
        return self.grid[0] * self.grid[1]


class Adapter:
    name: str = ""
    model_classes: tuple[str, ...] = ()

    def core(self, model: nn.Module) -> nn.Module:
        """The multimodal module whose forward receives input_ids and the image inputs."""
        return model.model

    def decoder_layers(self, model: nn.Module) -> nn.ModuleList:
        return model.model.language_model.layers

    def text_config(self, model: nn.Module):
        return model.config.get_text_config()

    def attach(self, model: nn.Module):
        """Architecture-specific checks installed by compress(); returns the callable that undoes them."""
        return lambda: None

    def vision_token_ids(self, model: nn.Module) -> tuple[int, ...]:
        raise NotImplementedError

    def vision_spans(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> list[list[VisionSpan]]:
        """Per sample, the vision-token runs in order, each with its grid."""
        raise NotImplementedError


def token_runs(row: torch.Tensor, token_ids: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(start, length, token_id) of every maximal run of any of ``token_ids`` in a 1-D id row."""
    hit = torch.isin(row, torch.tensor(token_ids, device=row.device))
    if not hit.any():
        return []
    ids = row.tolist()  # one transfer; the scan below is plain Python on a few hundred ints
    runs = []
    start = None
    for p in hit.nonzero().flatten().tolist() + [None]:
        if start is not None and p == end + 1 and ids[p] == ids[start]:
            end = p
            continue
        if start is not None:
            runs.append((start, end - start + 1, ids[start]))
        start = end = p
    return runs
