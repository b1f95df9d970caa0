"""LLaVA-1.5 and Qwen2-VL facts beyond the shared oracle tests (tests/core/test_families.py)."""

import torch

import adsc
from adsc.tiny import tiny_llava, tiny_qwen2_vl

from .helpers import llava_ids, mm_types, pad_batch, qwen_sample
from .test_families import compressed

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


def test_llava_vision_tokens_per_layer_follow_the_schedule_per_image():
    model = tiny_llava(layers=6, attn="eager")
    ids, mask, pos = pad_batch([llava_ids([1, 5, 6]), llava_ids([1, 9], n_images=2)], "left")
    pixels = torch.randn(3, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    for pattern in ("grid2d", "stride1d"):
        _, trace = compressed(model, CFG.replace(pattern=pattern),
                              dict(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixels))
        for b in range(2):  # 36 per image, halved at each pruning layer on each image's own grid
            assert trace.vision_tokens(b) == [36 * (b + 1)] * 2 + [18 * (b + 1)] * 2 + [9 * (b + 1)] * 2


def test_qwen2_vl_two_grids_in_one_sample_are_halved_each_on_its_own_grid():
    model = tiny_qwen2_vl(layers=6, attn="eager")
    row, pixels = qwen_sample([(1, 8, 8), (1, 4, 12)])  # 16 and 12 tokens, different grids
    ids = torch.tensor([row])
    inputs = dict(input_ids=ids, pixel_values=pixels, image_grid_thw=torch.tensor([[1, 8, 8], [1, 4, 12]]),
                  mm_token_type_ids=mm_types(ids))
    _, trace = compressed(model, CFG, inputs)
    assert trace.vision_tokens(0) == [28] * 2 + [8 + 6] * 2 + [4 + 3] * 2
