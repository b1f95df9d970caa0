"""Bytes a decode step moves (weights + KV read), the analytical floor of a bandwidth-bound step."""

import pytest

from adsc import CompressionConfig
from adsc.profiling.flops import Conventions, account
from adsc.profiling.shapes import preset


def test_decode_step_bytes_are_the_weights_plus_the_mean_kv_read():
    shape = preset("llava-1.5-7b")
    t = shape.text
    conventions = Conventions(weight_dtype_bytes=2, kv_dtype_bytes=2)
    acc = account(shape, None, text_tokens=60, new_tokens=5, batch=2, conventions=conventions)
    weights = (t.layers * t.linear_params + t.hidden * t.vocab) * 2
    n = 60 + 576
    kv_token = 2 * t.kv_heads * t.head_dim * 2
    mean_keys = sum(n + j for j in range(1, 5)) / 4  # steps 1..4 attend over n + j keys
    assert acc.weight_bytes_per_step == weights
    assert acc.decode_step_bytes == pytest.approx(weights + t.layers * 2 * kv_token * mean_keys)
    fixed = account(shape, None, 60, 5, 2, Conventions(kv_read="capacity"))
    assert fixed.decode_step_bytes == weights + t.layers * 2 * kv_token * (n + 4)  # a fixed buffer read whole


def test_the_bytes_ratio_at_192_batch_32_is_weight_bound():
    """Issue 21: at batch 32 on the 7B shape the bytes ratio at 192 is about 0.74, far above the KV
    ratio (0.42): the weights are read every step whatever the cache holds."""
    shape = preset("llava-1.5-7b")
    counts = CompressionConfig(layers=(2, 8, 16, 24), budget=192).schedule(32).tokens_per_layer()
    full, ours = account(shape, None, 60, 32, 32), account(shape, counts, 60, 32, 32)
    assert ours.decode_step_bytes / full.decode_step_bytes == pytest.approx(0.733, abs=0.005)
    assert ours.kv_bytes / full.kv_bytes == pytest.approx(0.424, abs=0.005)
    one = account(shape, counts, 60, 32, 1).decode_step_bytes / account(shape, None, 60, 32, 1).decode_step_bytes
    assert one > 0.98  # batch 1: almost only weights
