"""Mistral 3: per image rows of [IMG] tokens, each row closed by [IMG_BREAK], the last by [IMG_END]."""

import torch

from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_mistral3 import tiny_mistral3

from . import FamilyCase

BREAK, END = 27, 26  # [IMG_BREAK] / [IMG_END]: text tokens inside an image's run
PX = 16  # tiny tower: patch 8, 2 x 2 merge


def image_ids(height, width):
    """The processor's tokens for an image of (height, width) px: rows of [IMG], break / end after each."""
    rows, cols = height // PX, width // PX
    return [t for r in range(rows) for t in [IMAGE_TOKEN] * cols + [BREAK if r + 1 < rows else END]]


def mistral3_sample(prefix, sizes, seed, between=(7, 8), suffix=(9, 10)):
    ids = list(prefix)
    for i, size in enumerate(sizes):
        ids += image_ids(*size) + (list(between) if i + 1 < len(sizes) else [])
    # every image on one 64 x 64 canvas (the processor pads to the batch's largest; the tower crops by image_sizes)
    pixels = torch.randn(len(sizes), 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    return {"input_ids": torch.tensor([ids + list(suffix)]), "pixel_values": pixels, "image_sizes": torch.tensor(sizes)}


def samples():
    return [mistral3_sample([1, 5, 6], [(48, 64), (32, 32)], 1),  # 3 x 4 and 2 x 2 grids
            mistral3_sample([1, 9], [(64, 48)], 2),  # 4 x 3
            {"input_ids": torch.tensor([[1, 5, 6, 7]])}]


CASE = FamilyCase("mistral3", build=lambda attn: tiny_mistral3(layers=6, attn=attn), samples=samples)
