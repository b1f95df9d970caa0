"""LLaVA-1.5: one 6 x 6 grid per image, contiguous runs of the image token."""

import torch

from adsc.tiny import tiny_llava

from ..helpers import llava_ids
from . import FamilyCase


def _pixels(n, seed):
    return torch.randn(n, 3, 48, 48, generator=torch.Generator().manual_seed(seed))


def samples():
    return [
        {"input_ids": torch.tensor([llava_ids([1, 5, 6])]), "pixel_values": _pixels(1, 1)},
        {"input_ids": torch.tensor([llava_ids([1, 9], n_images=2)]), "pixel_values": _pixels(2, 2)},
        {"input_ids": torch.tensor([[1, 5, 6, 7]])},  # text only
    ]


CASE = FamilyCase("llava", build=lambda attn: tiny_llava(layers=6, attn=attn), samples=samples)
