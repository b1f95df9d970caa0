"""The analytical model: hand-checkable figures, conventions, presets, Table IV."""

import pytest

from adsc import CompressionConfig
from adsc.profiling import Conventions, account, preset
from adsc.profiling.flops import attention_flops
from adsc.profiling.table4 import PAPER, TOLERANCE, reproduce


def test_llava_7b_per_token_cost_is_two_flops_per_weight():
    shape = preset("llava-1.5-7b")
    assert shape.text.linear_params * 32 == pytest.approx(6.476e9, rel=1e-3)  # Llama-2-7B without embeddings
    one = account(shape, text_tokens=0, new_tokens=1, conventions=Conventions(vision=False, lm_head="last"))
    two = account(shape, text_tokens=1, new_tokens=1, conventions=Conventions(vision=False, lm_head="last"))
    # one more prompt token: 2 x layer weights, plus its attention row/column
    extra = two.total_flops - one.total_flops
    attn = sum(attention_flops(577, 577, 32, 128, False) - attention_flops(576, 576, 32, 128, False) for _ in range(32))
    assert extra == 2 * 32 * shape.text.linear_params + attn


def test_vision_tower_and_projector_of_llava():
    acc = account(preset("llava-1.5-7b"))
    assert (acc.vision_flops + acc.projector_flops) / 1e12 == pytest.approx(0.406, abs=0.002)


def test_causal_counts_fewer_and_decode_is_one_row():
    assert attention_flops(4, 4, 1, 1, causal=True) == 4 * (1 + 2 + 3 + 4)
    assert attention_flops(4, 4, 1, 1, causal=False) == 4 * 16
    assert attention_flops(1, 9, 2, 3, causal=True) == attention_flops(1, 9, 2, 3, causal=False) == 4 * 9 * 6


def test_kv_bytes_follow_the_schedule():
    shape = preset("llava-1.5-7b")
    schedule = CompressionConfig(layers=(2, 8, 16, 24), budget=192).schedule(32)
    acc = account(shape, schedule.tokens_per_layer(), text_tokens=40, new_tokens=9, batch=3)
    per_token = 2 * 4096 * 2  # K + V, fp16, one layer
    assert acc.kv_bytes == 3 * per_token * sum(v + 40 + 8 for v in schedule.tokens_per_layer())
    assert acc.layers[1].prompt_tokens == 40 + 576 and acc.layers[2].vision_tokens == schedule.keep_counts[0]


def test_presets_and_gqa():
    qwen = preset("qwen2-vl-7b")
    assert qwen.vision_tokens == 256 and qwen.text.kv_bytes_per_token(2) == 2 * 4 * 128 * 2
    assert preset("llava-1.5-13b").text.layers == 40
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("gpt")


def test_table4_reproduced_within_tolerance():
    rows = reproduce()
    assert [r["budget"] for r in rows] == [576, 192, 128, 64]
    for row, (tflops, mb) in zip(rows, PAPER.values()):
        assert row["paper_tflops"] == tflops and row["paper_kv_mb"] == mb
        assert abs(row["tflops_error"]) <= TOLERANCE and abs(row["kv_error"]) <= TOLERANCE
        if row["budget"] != 576:
            assert abs(row["average_vision_tokens"] - row["budget"]) < 1
