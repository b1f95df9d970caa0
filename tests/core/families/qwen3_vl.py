"""Qwen3-VL: images and per-frame video runs, interleaved M-RoPE, DeepStack features in the first layers.

Two cases: pruning after the last DeepStack layer (layers 2, 4; tiny_qwen3_vl adds DeepStack
features after layers 0 and 1) and inside it (layers 1, 4: layer 1's features land on kept slots).
"""

import torch

import adsc
from adsc.tiny import IMAGE_TOKEN, VIDEO_TOKEN, VISION_END, VISION_START
from adsc.tiny_qwen3_vl import tiny_qwen3_vl

from . import FamilyCase

PATCH = 3 * 2 * 16 * 16  # channels x temporal patch x 16 x 16


def qwen3_ids(text, images=(), video=None, tail=(43, 44)):
    """input_ids: text, each image's run, then a video as one run per temporal patch after a timestamp."""
    ids = list(text)
    for _, h, w in images:
        ids += [VISION_START] + [IMAGE_TOKEN] * (h * w // 4) + [VISION_END]
    if video is not None:
        t, h, w = video
        for frame in range(t):
            ids += [50 + frame, VISION_START] + [VIDEO_TOKEN] * (h * w // 4) + [VISION_END]
    return torch.tensor([ids + list(tail)])


def mm_types(ids):
    return torch.where(ids == IMAGE_TOKEN, 1, torch.where(ids == VIDEO_TOKEN, 2, 0))


def _sample(text, images=(), video=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ids = qwen3_ids(text, images, video)
    out = {"input_ids": ids, "mm_token_type_ids": mm_types(ids)}
    if images:
        out["pixel_values"] = torch.randn(sum(t * h * w for t, h, w in images), PATCH, generator=gen)
        out["image_grid_thw"] = torch.tensor(images)
    if video is not None:
        out["pixel_values_videos"] = torch.randn(video[0] * video[1] * video[2], PATCH, generator=gen)
        out["video_grid_thw"] = torch.tensor([video])
    return out


def samples():
    text_only = torch.tensor([[40, 41, 42, 43]])
    return [_sample((40, 41, 42), images=[(1, 8, 8), (1, 4, 8)], seed=1),  # 16 and 8 tokens
            _sample((40,), images=[(1, 4, 4)], video=(2, 4, 8), seed=2),  # an image, then a video of 2 frames x 8 tokens
            {"input_ids": text_only, "mm_token_type_ids": torch.zeros_like(text_only)}]


CASES = [
    FamilyCase("qwen3_vl", build=lambda attn: tiny_qwen3_vl(layers=6, deepstack=2, attn=attn), samples=samples,
               pass_positions=False),
    FamilyCase("qwen3_vl_inside_deepstack", build=lambda attn: tiny_qwen3_vl(layers=6, deepstack=2, attn=attn),
               samples=samples, pass_positions=False, config=adsc.CompressionConfig(layers=(1, 4), drop_ratio=0.5)),
]
