"""Gemma 3: local (sliding-window) and global layers, bidirectional attention inside each image."""

import torch

from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_gemma3 import END_OF_IMAGE, START_OF_IMAGE, tiny_gemma3

from . import FamilyCase

PER_IMAGE = 16  # tiny_gemma3: 8 x 8 SigLIP patches pooled to 4 x 4


def gemma_ids(prefix, images, between=(7, 8), suffix=(9, 10, 11)):
    ids = list(prefix)
    for i in range(images):
        ids += [START_OF_IMAGE] + [IMAGE_TOKEN] * PER_IMAGE + [END_OF_IMAGE] + (list(between) if i + 1 < images else [])
    return torch.tensor([ids + list(suffix)])


def _sample(prefix, images, seed):
    ids = gemma_ids(prefix, images)
    pixels = torch.randn(images, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "token_type_ids": (ids == IMAGE_TOKEN).long(), "pixel_values": pixels}


def samples():
    # 44 tokens with two images: the local layers' 24-token window ends inside the first image for
    # the second image's tokens and leaves it out entirely for the last ones
    text_only = torch.tensor([[1, 5, 6, 7]])
    return [_sample([1, 5, 6], 2, 1), _sample([1, 9], 1, 2),
            {"input_ids": text_only, "token_type_ids": torch.zeros_like(text_only)}]


CASE = FamilyCase("gemma3", build=lambda attn: tiny_gemma3(layers=6, attn=attn), samples=samples)
