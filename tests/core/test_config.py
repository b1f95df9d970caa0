"""The config contract: validation that names the fix, JSON round trip, conventions."""

import pytest
import torch

import adsc
from adsc import CompressionConfig, ConfigError
from adsc.adapters import UnsupportedModelError
from adsc.tiny import tiny_llava

from .helpers import llava_ids


def test_json_round_trip(tmp_path):
    cfg = CompressionConfig(layers=(2, 8, 16, 24), budget=128, pattern="stride1d", phase=0.25)
    cfg.save_pretrained(tmp_path)
    assert CompressionConfig.from_pretrained(tmp_path) == cfg
    assert CompressionConfig.from_pretrained(tmp_path / "adsc_config.json").schedule(32).average == pytest.approx(128, abs=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(drop_ratio=1.0), r"drop_ratio must lie in \[0, 1\)"),
        (dict(drop_ratio=-0.1), r"drop_ratio must lie in \[0, 1\)"),
        (dict(), "set exactly one of drop_ratio"),
        (dict(drop_ratio=0.5, budget=100), "set exactly one of drop_ratio"),
        (dict(drop_ratio=0.5, method="magic"), "unknown method 'magic'; choose one of"),
        (dict(drop_ratio=0.5, pattern="zigzag"), "unknown pattern"),
        (dict(drop_ratio=0.5, layers=(2, 2)), "must be distinct"),
        (dict(drop_ratio=0.5, drop_position="middle"), "drop_position must be"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CompressionConfig(**kwargs)


def test_layer_out_of_range_and_unreachable_budget_name_the_fix():
    with pytest.raises(ConfigError, match=r"out of range for a 32-layer decoder.*\[1, 31\]"):
        CompressionConfig(layers=(0, 8), drop_ratio=0.5).schedule(32)
    with pytest.raises(ConfigError, match=r"out of range.*\[1, 31\]"):
        CompressionConfig(layers=(40,), drop_ratio=0.5).schedule(32)
    with pytest.raises(ConfigError, match=r"reachable averages lie in \(144.00, 576\].*Lower the first pruning layer"):
        CompressionConfig(layers=(8, 16, 24), budget=64).schedule(32)
    with pytest.raises(ConfigError, match="unknown config keys"):
        CompressionConfig.from_dict({"drop_ratio": 0.5, "ratio": 0.5})


def test_drop_position_conventions_agree():
    before = CompressionConfig(layers=(8,), drop_ratio=0.5).schedule(32)
    after = CompressionConfig(layers=(7,), drop_ratio=0.5, drop_position="after").schedule(32)
    assert before == after
    counts = before.tokens_per_layer()
    assert counts[7] == 576 and counts[8] == 288  # "the first 8 layers operate on the full set"


def test_drop_happens_at_the_configured_layer_in_a_real_model():
    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CompressionConfig(layers=(3,), drop_ratio=0.5))
    with torch.no_grad():
        model(input_ids=torch.tensor([llava_ids([1])]), pixel_values=torch.randn(1, 3, 48, 48))
    assert handle.last_trace.vision_tokens(0) == [36, 36, 36, 18, 18, 18]
    handle.remove()


def test_unsupported_model_and_double_compress():
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(UnsupportedModelError, match="supported models: LlavaForConditionalGeneration"):
        adsc.compress(llama, CompressionConfig(drop_ratio=0.5))
    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CompressionConfig(layers=(2,), drop_ratio=0.5))
    with pytest.raises(RuntimeError, match="already compressed"):
        adsc.compress(model, CompressionConfig(layers=(2,), drop_ratio=0.5))
    handle.remove()


def test_token_count_mismatch_is_reported():
    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CompressionConfig(layers=(2,), drop_ratio=0.5))
    ids = torch.tensor([[1] + [31] * 30 + [5]])  # 30 image tokens, a 6x6 grid needs 36
    with pytest.raises(ValueError, match="not a multiple of 36"):
        model(input_ids=ids, pixel_values=torch.randn(1, 3, 48, 48))
    handle.remove()


def test_no_pruning_layers_means_no_compression_for_any_budget():
    sched = CompressionConfig(layers=(), budget=64).schedule(32)
    assert sched.tokens_per_layer() == [576] * 32 and sched.stage_layers == ()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(budget="192"), r"budget must be a finite number such as 192 \(or null\), got str '192'"),
        (dict(budget=True), "budget must be a finite number.*got bool"),
        (dict(budget=float("nan")), "budget must be a finite number"),
        (dict(drop_ratio="0.5"), "drop_ratio must be a finite number such as 0.5"),
        (dict(budget=128, layers=8), r"layers must be a list .*single number 8: write \[8\]"),
        (dict(budget=128, layers="2 8"), "layers must be a list of decoder-layer indices"),
        (dict(budget=128, layers=[2.5, 8]), r"whole non-negative layer indices, got \[2.5\]"),
        (dict(budget=128, layers=[2, True]), r"whole non-negative layer indices, got \[True\]"),
        (dict(budget=128, layers=[-1, 8]), r"whole non-negative layer indices, got \[-1\]"),
        (dict(budget=128, vision_tokens=575.5), "vision_tokens must be a whole number such as 576, got float"),
        (dict(budget=128, vision_tokens=True), "vision_tokens must be a whole number.*got bool"),
        (dict(budget=128, seed=1.0), "seed must be a whole number"),
        (dict(budget=128, phase="mid"), r"phase must be a number in \[0, 1\)"),
        (dict(budget=128, options=[]), "options must be a dict"),
        (dict(budget=128, method=3), "method must be a string"),
        (dict(budget=128, options={"every_layer": True}), r"unknown options \['every_layer'\] for method 'adsc'"),
    ],
)
def test_fields_of_the_wrong_type_are_named_not_coerced(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CompressionConfig(**kwargs)


def test_a_compression_file_that_is_not_json_or_not_an_object_is_named(tmp_path):
    bad = tmp_path / "adsc_config.json"
    bad.write_text("{budget: 192")
    with pytest.raises(ConfigError, match=rf"{bad} is not a JSON file"):
        CompressionConfig.from_pretrained(bad)
    bad.write_text("[192]")
    with pytest.raises(ConfigError, match=rf"{bad} holds a JSON list, not an object"):
        CompressionConfig.from_pretrained(tmp_path)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="is not a JSON file"):
        CompressionConfig.from_pretrained(bad)
    bad.write_text('{"budget": "192"}')
    with pytest.raises(ConfigError, match=rf"{bad}: budget must be a finite number"):
        CompressionConfig.from_pretrained(bad)
    with pytest.raises(ConfigError, match="JSON object of fields, got list"):
        CompressionConfig.from_dict([("budget", 192)])
