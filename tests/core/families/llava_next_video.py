"""LLaVA-NeXT-Video: LLaVA-NeXT images, and videos as frames of a pooled grid (no newline tokens)."""

import torch

from adsc.tiny import VIDEO_TOKEN
from adsc.tiny_llava_video import tiny_llava_next_video

from ..helpers import anyres_pixels, next_sample
from . import FamilyCase

FRAMES = 4
VIDEO = FRAMES * 3 * 3  # the 6 x 6 frame grid average-pooled at stride 2


def next_video_sample(prefix, sizes=(), videos=0, seed=0):
    """LLaVA-NeXT images of ``sizes`` (see tests/core/helpers.py), then ``videos`` videos of FRAMES frames."""
    ids = next_sample(prefix, list(sizes), suffix=()) if sizes else list(prefix)
    for _ in range(videos):
        ids += [6] + [VIDEO_TOKEN] * VIDEO
    inputs = {"input_ids": torch.tensor([ids + [9, 10]])}
    if sizes:
        inputs.update(pixel_values=anyres_pixels(list(sizes), seed), image_sizes=torch.tensor(list(sizes)))
    if videos:
        g = torch.Generator().manual_seed(seed + 100)
        inputs["pixel_values_videos"] = torch.randn(videos, FRAMES, 3, 48, 48, generator=g)
    return inputs


def samples():
    return [next_video_sample([1, 5, 6], [(60, 90)], videos=1, seed=1),
            next_video_sample([1, 9], videos=2, seed=2),
            {"input_ids": torch.tensor([[1, 5, 6, 7]])}]


CASE = FamilyCase("llava_next_video", build=lambda attn: tiny_llava_next_video(layers=6, attn=attn), samples=samples)
