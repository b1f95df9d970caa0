"""Measured FLOPs (FlopCounterMode on real forward/generate) and real cache bytes equal the analytical model."""

import pytest
import torch

import adsc
from adsc.profiling import Conventions, account, shape_from_config
from adsc.profiling.bench_models import build_inputs, build_model
from adsc.profiling.measure import count_flops, text_tokens
from adsc.tiny import IMAGE_TOKEN

NEW = 4


@pytest.fixture(scope="module")
def model_and_inputs():
    torch.manual_seed(0)
    model = build_model("tiny")  # 576 real vision tokens, 8 decoder layers, GQA-free Llama + small CLIP
    return model, build_inputs(1), shape_from_config(model.config)


def test_cpu_sdpa_is_counted(model_and_inputs):
    model, inputs, _ = model_and_inputs
    with torch.no_grad():
        _, per_op, _ = count_flops(model, **inputs)
    assert per_op.get("aten._scaled_dot_product_flash_attention_for_cpu", 0) > 0


@pytest.mark.parametrize("config", [None, adsc.CompressionConfig(layers=(1, 3, 5), budget=160),
                                    adsc.CompressionConfig(method="random", layers=(2, 4), drop_ratio=0.6)])
def test_forward_and_generate_flops_and_kv_match(model_and_inputs, config):
    model, inputs, shape = model_and_inputs
    text = text_tokens(inputs["input_ids"], IMAGE_TOKEN)
    handle = adsc.compress(model, config) if config else None
    try:
        per_layer = handle.schedule.tokens_per_layer() if handle else None
        with torch.no_grad():
            measured, _, _ = count_flops(model, **inputs)  # plain forward: logits at every position
        expected = account(shape, per_layer, text, 1, 1, Conventions(lm_head="all")).total_flops
        assert measured == pytest.approx(expected, rel=0.01)

        with torch.no_grad():
            measured, _, out = count_flops(model.generate, **inputs, max_new_tokens=NEW, min_new_tokens=NEW,
                                           do_sample=False, return_dict_in_generate=True)
        acc = account(shape, per_layer, text, NEW, 1, Conventions(lm_head="last", kv_dtype_bytes=4))
        assert measured == pytest.approx(acc.total_flops, rel=0.01)
        cache = out.past_key_values
        assert adsc.cache_bytes(cache) == acc.kv_bytes  # exact, not approximately
        per_token = shape.text.kv_bytes_per_token(4)
        assert [n * per_token for n in adsc.cache_lengths(cache)] == [row.kv_bytes for row in acc.layers]
        if handle:
            assert handle.last_trace.vision_tokens(0) == per_layer
    finally:
        if handle:
            handle.remove()
