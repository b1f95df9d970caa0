"""Qwen3-VL-MoE: Qwen3-VL's layout and DeepStack on a decoder of top-2-of-4 expert MLPs (the last
layer dense). Pruning at layers 1 and 4: layer 1 is inside DeepStack (features after layers 0, 1)."""

import adsc
from adsc.tiny_qwen3_vl import tiny_qwen3_vl

from . import FamilyCase
from .qwen3_vl import samples

CASE = FamilyCase("qwen3_vl_moe", build=lambda attn: tiny_qwen3_vl(layers=6, deepstack=2, attn=attn, experts=4),
                  samples=samples, pass_positions=False, config=adsc.CompressionConfig(layers=(1, 4), drop_ratio=0.5))
