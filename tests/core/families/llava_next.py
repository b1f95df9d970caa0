"""LLaVA-NeXT (anyres): a base grid and an unpadded tile map per image, newline tokens kept like text."""

import torch

from adsc.tiny import tiny_llava_next

from ..helpers import anyres_pixels, next_sample
from . import FamilyCase


def _sample(prefix, sizes, seed):
    return {"input_ids": torch.tensor([next_sample(prefix, sizes)]), "pixel_values": anyres_pixels(sizes, seed),
            "image_sizes": torch.tensor(sizes)}


def samples():
    return [_sample([1, 5, 6], [(96, 96), (60, 90)], 1), _sample([1, 9], [(90, 60)], 2),
            {"input_ids": torch.tensor([[1, 5, 6, 7]])}]


CASE = FamilyCase("llava_next", build=lambda attn: tiny_llava_next(layers=6, attn=attn), samples=samples)
