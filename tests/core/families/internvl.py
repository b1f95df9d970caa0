"""InternVL: <img>, 16 context tokens per 32 px tile (4 x 4 after the pixel shuffle), </img>; each tile its own grid."""

import torch

from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_internvl import tiny_internvl

from . import FamilyCase

START, END = 28, 29  # <img> / </img>: text tokens around an image's run of tiles
TILE = 16


def internvl_ids(prefix, tiles_per_image, between=(7, 8), suffix=(9, 10)):
    """input_ids as InternVLProcessor writes them: <img> + 16 context tokens per tile + </img> per image."""
    ids = list(prefix)
    for i, tiles in enumerate(tiles_per_image):
        ids += [START] + [IMAGE_TOKEN] * (TILE * tiles) + [END] + (list(between) if i + 1 < len(tiles_per_image) else [])
    return ids + list(suffix)


def tiles(n, seed):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def samples():
    return [
        # a 2 x 1 tiled image + its thumbnail (3 tiles), then a small image of one tile
        {"input_ids": torch.tensor([internvl_ids([1, 5, 6], [3, 1])]), "pixel_values": tiles(4, 1)},
        # two video frames: one tile each, "FrameN:" text before every <img>
        {"input_ids": torch.tensor([internvl_ids([1, 9, 40], [1, 1], between=(12, 41))]), "pixel_values": tiles(2, 2)},
        {"input_ids": torch.tensor([[1, 5, 6, 7]])},  # text only
    ]


CASE = FamilyCase("internvl", build=lambda attn: tiny_internvl(layers=6, attn=attn), samples=samples)
