"""Sliding-window layers in the analytical model (Gemma 3's local layers, a Mistral's window):
attention bounded by the window, a sliding cache bounded by window - 1 tokens, against hand counts."""

import json

import pytest

from adsc.cli import main
from adsc.profiling import Conventions, ModelShape, TextShape, VisionShape, account, preset
from adsc.profiling.flops import attention_flops
from adsc.profiling.shapes import declared_windows


# one head of 1 dim: attention FLOPs = 4 x (query, key) pairs
def test_a_windowed_causal_mask_counts_min_of_position_and_window_keys():
    assert attention_flops(5, 5, 1, 1, causal=True, window=2) == 4 * (1 + 2 + 2 + 2 + 2)
    assert attention_flops(2, 6, 1, 1, causal=True, window=3) == 4 * (3 + 3)  # queries 4 and 5 of 6 keys
    assert attention_flops(5, 5, 1, 1, causal=True, window=9) == attention_flops(5, 5, 1, 1, causal=True)  # wider than the prompt
    assert attention_flops(5, 5, 1, 1, causal=False, window=2) == 4 * 25  # a masked rectangle is still computed whole


TEXT = TextShape(hidden=8, layers=2, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=10, windows=(3, None))
SHAPE = ModelShape("toy", TEXT, VisionShape(hidden=4, layers=1, heads=1, intermediate=4, patch_in=4, patches=4,
                                            extra_tokens=0, out_tokens=4, projector=((4, 8),), projector_tokens=4))
LINEAR = 64 + 64 + 64 + 3 * 8 * 16  # q, k + v, o, gate / up / down = 576 weights
KV_TOKEN = 2 * 1 * 4 * 2  # K + V of one token, one layer, fp16: 16 bytes


@pytest.mark.parametrize("attention, cache, layer0_decode_attn, layer0_kv_tokens, layer0_reads", [
    # a 6-token prompt, 3 decode steps; layer 0 has window 3, layer 1 is full
    ("causal", "window", 3 * 3, 2, 3 * 3),  # a sliding cache holds 2 (= window - 1): each step 3 keys
    ("causal", "full", 3 + 3 + 3, 9, 7 + 8 + 9),  # every token cached; the mask still lets a query see 3
    ("rect", "window", 3 * 3, 2, 3 * 3),
    ("rect", "full", 7 + 8 + 9, 9, 7 + 8 + 9),  # a rectangle over every cached key
])
def test_account_of_a_windowed_layer_by_hand(attention, cache, layer0_decode_attn, layer0_kv_tokens, layer0_reads):
    conv = Conventions(vision=False, attention=attention, sliding_cache=cache)
    acc = account(SHAPE, [4, 4], text_tokens=2, new_tokens=4, conventions=conv)
    local, full = acc.layers
    prefill_pairs = (1 + 2 + 3 + 3 + 3 + 3) if attention == "causal" else 36
    assert local.prefill_flops == 2 * 6 * LINEAR + 4 * prefill_pairs * 2 * 4
    assert local.decode_flops == 3 * 2 * LINEAR + 4 * layer0_decode_attn * 2 * 4
    assert (local.kv_bytes, local.decode_kv_read) == (KV_TOKEN * layer0_kv_tokens, KV_TOKEN * layer0_reads)
    assert local.cached_after_prefill == (2 if cache == "window" else 6) and local.window == 3
    # the full layer is what it always was
    assert full.prefill_flops == 2 * 6 * LINEAR + 4 * ((1 + 2 + 3 + 4 + 5 + 6) if attention == "causal" else 36) * 8
    assert full.decode_flops == 3 * 2 * LINEAR + 4 * (7 + 8 + 9) * 8
    assert (full.kv_bytes, full.cached_after_prefill, full.window) == (KV_TOKEN * 9, 6, None)
    assert acc.prefill_kv_bytes == KV_TOKEN * (local.cached_after_prefill + 6)


def test_declared_windows_follow_the_config():
    from transformers import Gemma3TextConfig, LlamaConfig, MistralConfig, Qwen2Config

    assert declared_windows(MistralConfig(num_hidden_layers=3, sliding_window=8)) == (8, 8, 8)
    assert declared_windows(MistralConfig(num_hidden_layers=3, sliding_window=None)) == ()
    gemma = Gemma3TextConfig(num_hidden_layers=7, sliding_window=16)
    assert declared_windows(gemma) == tuple(16 if k == "sliding_attention" else None for k in gemma.layer_types)
    assert declared_windows(gemma).count(None) == 1  # layer 5: one global layer per six
    assert declared_windows(Qwen2Config(num_hidden_layers=2)) == declared_windows(LlamaConfig()) == ()


def test_gemma_3_4b_preset_kv_by_hand():
    shape = preset("gemma-3-4b")
    assert sum(w is not None for w in shape.text.windows) == 29 and set(shape.text.windows) == {1024, None}
    per_token = 2 * 4 * 256 * 2  # K + V, 4 KV heads of 256, bf16
    prompt = 2000 + 256
    full = account(shape, text_tokens=2000, new_tokens=1, conventions=Conventions(vision=False))
    assert full.kv_bytes == per_token * (29 * 1023 + 5 * prompt)
    unslid = account(shape, text_tokens=2000, new_tokens=1, conventions=Conventions(vision=False, sliding_cache="full"))
    assert unslid.kv_bytes == per_token * 34 * prompt


# google/gemma-3-4b-it's config.json, the keys it names (read from public copies of it, see
# adsc.profiling.shapes.gemma_3_4b); transformers' Gemma3TextConfig defaults fill the rest when it loads
GEMMA_3_4B_IT = {
    "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144, "mm_tokens_per_image": 256,
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text", "num_hidden_layers": 34,
                    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
    "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "model_type": "siglip_vision_model",
                      "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": False},
}


def test_gemma_3_4b_preset_is_the_released_config_as_transformers_reads_it():
    from transformers import Gemma3Config

    config = Gemma3Config(**GEMMA_3_4B_IT)
    shape, t, v = preset("gemma-3-4b"), config.text_config, config.vision_config
    assert shape.text == TextShape(t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads,
                                   t.head_dim, t.intermediate_size, t.vocab_size, windows=declared_windows(t))
    grid = v.image_size // v.patch_size  # SigLIP: no class token; pooled into mm_tokens_per_image tokens
    assert shape.vision == VisionShape(v.hidden_size, v.num_hidden_layers, v.num_attention_heads, v.intermediate_size,
                                       patch_in=v.num_channels * v.patch_size**2, patches=grid * grid, extra_tokens=0,
                                       out_tokens=config.mm_tokens_per_image,
                                       projector=((v.hidden_size, t.hidden_size),),  # mm_input_projection_weight
                                       projector_tokens=config.mm_tokens_per_image)


def test_profile_says_how_it_counts_sliding_layers(capsys):
    assert main(["profile", "--model", "gemma-3-4b", "--layers", "2", "8", "--drop-ratio", "0.5", "--text-tokens", "1500"]) == 0
    out = capsys.readouterr().out
    assert "sliding-window layers: 29 of 34 (window 1024)" in out and "cache window - 1 tokens" in out
    assert main(["profile", "--model", "gemma-3-4b", "--layers", "2", "--drop-ratio", "0.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["full"]["conventions"]["sliding_cache"] == data["adsc"]["conventions"]["sliding_cache"] == "window"
    full, adsc = (data[k]["layers"] for k in ("full", "adsc"))
    assert all(a["kv_bytes"] <= f["kv_bytes"] for a, f in zip(adsc, full))  # no compressed layer caches more
    assert "sliding-window layers" in data["sliding_windows"]
    assert main(["profile", "--model", "llava-1.5-7b", "--drop-ratio", "0.5"]) == 0
    assert "sliding-window" not in capsys.readouterr().out
