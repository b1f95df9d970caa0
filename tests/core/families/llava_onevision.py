"""LLaVA-OneVision: anyres-max images (base grid + shrunk tile map + newlines), single-crop images in
multi-image prompts, videos (frames of a 2 x 2 pooled grid, one newline after the video)."""

import torch

from adsc.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from adsc.tiny_llava_video import tiny_llava_onevision

from . import FamilyCase

# tokens per item in the tiny model (6 x 6 crop grid, anyres_max_2): read off the model's own packed features
# in tests/core/test_llava_onevision.py
TILED = {(96, 96): 36 + 8 * (8 + 1), (60, 90): 36 + 6 * (10 + 1)}  # base grid + shrunk map rows, each with a newline
SINGLE_CROP = 36 + 1
FRAMES = 4
VIDEO = FRAMES * 3 * 3 + 1


def onevision_sample(prefix, images=(), video=False, seed=0):
    """``images``: (height, width) per image; one image is tiled, several are one crop each (batch_num_images)."""
    g = torch.Generator().manual_seed(seed)
    ids, inputs = list(prefix), {}
    for size in images:
        ids += [IMAGE_TOKEN] * (TILED[size] if len(images) == 1 else SINGLE_CROP) + [7]
    if images:
        crops = 5 if len(images) == 1 else len(images)  # tiled: the base image + 2 x 2 tiles of the 96 x 96 pinpoint
        inputs.update(pixel_values=torch.randn(crops, 3, 48, 48, generator=g), image_sizes=torch.tensor(list(images)),
                      batch_num_images=torch.tensor([len(images)]))
    if video:
        ids += [VIDEO_TOKEN] * VIDEO + [8]
        inputs["pixel_values_videos"] = torch.randn(1, FRAMES, 3, 48, 48, generator=g)
    return {"input_ids": torch.tensor([ids + [9, 10]]), **inputs}


def samples():
    return [onevision_sample([1, 5, 6], [(96, 96)], seed=1),
            onevision_sample([1, 9], [(60, 90), (90, 60)], video=True, seed=2),
            onevision_sample([1, 4], video=True, seed=3),
            {"input_ids": torch.tensor([[1, 5, 6, 7]])}]


CASE = FamilyCase("llava_onevision", build=lambda attn: tiny_llava_onevision(layers=6, attn=attn), samples=samples)
