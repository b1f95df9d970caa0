"""Qwen2-VL and Qwen2.5-VL video: one span of t frames per video on the merged grid, M-RoPE positions."""

import torch

from adsc.tiny import IMAGE_TOKEN, VIDEO_TOKEN, VISION_END, VISION_START, tiny_qwen2_5_vl, tiny_qwen2_vl

from . import FamilyCase

PATCH = 3 * 2 * 14 * 14  # channels x temporal patch x patch x patch: one row of pixel_values(_videos)


def video_sample(items, text=(40, 41), seed=0):
    """A prompt with ``items`` = ("image" | "video", (t, h, w)) in order, each between vision markers."""
    ids, inputs = list(text), {}
    g = torch.Generator().manual_seed(seed)
    for kind, (t, h, w) in items:
        ids += [VISION_START] + [IMAGE_TOKEN if kind == "image" else VIDEO_TOKEN] * (t * h * w // 4) + [VISION_END, 42]
        pixels, grids = ("pixel_values", "image_grid_thw") if kind == "image" else ("pixel_values_videos", "video_grid_thw")
        inputs[pixels] = torch.cat([inputs.get(pixels, torch.empty(0, PATCH)), torch.randn(t * h * w, PATCH, generator=g)])
        inputs[grids] = torch.cat([inputs.get(grids, torch.empty(0, 3, dtype=torch.long)), torch.tensor([[t, h, w]])])
    ids = torch.tensor([ids + [43, 44]])
    return {"input_ids": ids, "mm_token_type_ids": (ids == IMAGE_TOKEN).long() + 2 * (ids == VIDEO_TOKEN).long(), **inputs}


def samples():
    text_only = torch.tensor([[40, 41, 42, 43]])
    return [video_sample([("image", (1, 8, 8)), ("video", (3, 8, 4))], seed=1),  # 16 image tokens, 3 frames of 4 x 2
            video_sample([("video", (2, 4, 8))], text=(40,), seed=2),  # 2 frames of 2 x 4
            {"input_ids": text_only, "mm_token_type_ids": torch.zeros_like(text_only)}]


CASES = [
    FamilyCase("qwen2_vl_video", build=lambda attn: tiny_qwen2_vl(layers=6, attn=attn), samples=samples,
               pass_positions=False),
    FamilyCase("qwen2_5_vl_video", build=lambda attn: tiny_qwen2_5_vl(layers=6, attn=attn), samples=samples,
               pass_positions=False),
]
