"""Qwen2-VL and Qwen2.5-VL images: a grid per image from image_grid_thw, M-RoPE positions."""

import torch

from adsc.tiny import tiny_qwen2_5_vl, tiny_qwen2_vl

from ..helpers import mm_types, qwen_sample
from . import FamilyCase


def _sample(grids, text=(40, 41, 42), seed=0):
    torch.manual_seed(seed)
    ids, pixels = qwen_sample(grids, text=text)
    ids = torch.tensor([ids])
    return {"input_ids": ids, "mm_token_type_ids": mm_types(ids), "pixel_values": pixels,
            "image_grid_thw": torch.tensor(grids)}


def samples():
    text_only = torch.tensor([[40, 41, 42, 43]])
    return [_sample([(1, 8, 8), (1, 4, 12)], seed=1),  # 16 and 12 tokens on different grids
            _sample([(1, 12, 8)], text=(40,), seed=2),
            {"input_ids": text_only, "mm_token_type_ids": torch.zeros_like(text_only)}]


CASES = [
    FamilyCase("qwen2_vl", build=lambda attn: tiny_qwen2_vl(layers=6, attn=attn), samples=samples, pass_positions=False),
    FamilyCase("qwen2_5_vl", build=lambda attn: tiny_qwen2_5_vl(layers=6, attn=attn), samples=samples, pass_positions=False),
]
