"""Qwen3-VL facts beyond the shared oracle tests: per-frame video spans, DeepStack on kept slots,
q/k with M-RoPE for the score-based methods, refusals."""

from types import SimpleNamespace

import pytest
import torch
from transformers import Qwen3VLConfig

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.adapters.base import UnsupportedModelError
from adsc.adapters.qwen3_vl import Qwen3VLAdapter
from adsc.tiny import VIDEO_TOKEN
from adsc.tiny_qwen3_vl import tiny_qwen3_vl

from .families.qwen3_vl import samples
from .family_checks import (
    assert_every_span_keeps_its_uniform_grid,
    assert_queries_and_keys_reproduce_attention,
    compressed_vision_tokens,
)

CFG = adsc.CompressionConfig(layers=(1, 4), drop_ratio=0.5)  # inside DeepStack (features after layers 0 and 1)


@pytest.fixture(scope="module")
def model():
    return tiny_qwen3_vl(layers=6, deepstack=2, attn="eager")


def test_a_video_is_one_span_per_frame_between_its_timestamps(model):
    """video_grid_thw (2, 4, 8): two runs of 2 x 4 tokens, as the model's get_rope_index splits it."""
    sample = samples()[1]
    spans = adapter_for(model).vision_spans(model, sample["input_ids"], sample)[0]
    assert [s.grid for s in spans] == [(2, 2), (2, 4), (2, 4)]  # the image, then frame 0 and frame 1
    video = (sample["input_ids"][0] == VIDEO_TOKEN).nonzero().flatten().tolist()
    assert [p for s in spans[1:] for p in s.token_positions().tolist()] == video
    assert spans[2].start - (spans[1].start + 8) == 3  # <|vision_end|>, the timestamp, <|vision_start|>: text


def test_every_frame_keeps_the_documented_uniform_grid(model):
    assert_every_span_keeps_its_uniform_grid(model, samples()[1], CFG)


def test_deepstack_wrapper_is_installed_by_compress_and_removed(model):
    text = model.model.language_model
    handle = adsc.compress(model, CFG)
    assert "_deepstack_process" in text.__dict__ and "get_rope_index" in model.model.__dict__
    handle.remove()
    assert "_deepstack_process" not in text.__dict__ and "get_rope_index" not in model.model.__dict__


def test_deepstack_after_every_decoder_layer_is_refused_with_nothing_installed():
    model = tiny_qwen3_vl(layers=2, deepstack=2)
    with pytest.raises(UnsupportedModelError, match="DeepStack features after 2 decoder layers but has only 2"):
        adsc.compress(model, adsc.CompressionConfig(layers=(1,), drop_ratio=0.5))
    assert adsc.get_handle(model) is None and not model.model._forward_pre_hooks
    assert "_deepstack_process" not in model.model.language_model.__dict__ and "get_rope_index" not in model.model.__dict__


def test_config_alone_finds_qwen3_vl_and_its_reference_tokens():
    config = Qwen3VLConfig()
    adapter = adapter_for_config(config)
    assert isinstance(adapter, Qwen3VLAdapter)
    assert adapter.reference_vision_tokens(SimpleNamespace(config=config)) == 576


def test_queries_and_keys_reproduce_the_layers_own_attention(model):
    """q/k norms and interleaved M-RoPE (3-D positions), as the layer applies them."""
    hidden = torch.randn(1, 7, model.config.text_config.hidden_size)
    positions = torch.stack([torch.arange(7), torch.tensor([0, 1, 1, 2, 2, 3, 4]), torch.tensor([0, 1, 2, 1, 2, 3, 4])])
    pos = model.model.language_model.rotary_emb(hidden, positions[:, None])
    assert_queries_and_keys_reproduce_attention(model, model.model.language_model.layers[0], hidden, pos)


@pytest.mark.parametrize("method", ["random", "fastv", "pyramiddrop", "tome"])
def test_baselines_run_on_qwen3_vl_inside_deepstack(model, method):
    out, kept = compressed_vision_tokens(model, samples()[1], adsc.CompressionConfig(method=method, layers=(1,), drop_ratio=0.5))
    assert torch.isfinite(out).all() and kept[-1] < kept[0]


# ---------------------------------------------------------------------------------------- Qwen3-VL-MoE
@pytest.fixture(scope="module")
def moe():
    return tiny_qwen3_vl(layers=6, deepstack=2, attn="eager", experts=4)


def test_qwen3_vl_moe_is_registered_with_qwen3_vls_paths(moe):
    from transformers import Qwen3VLMoeConfig

    from adsc.adapters.qwen3_vl import Qwen3VLMoeAdapter

    adapter = adapter_for(moe)
    assert isinstance(adapter, Qwen3VLMoeAdapter) and isinstance(adapter_for_config(Qwen3VLMoeConfig()), Qwen3VLMoeAdapter)
    for path in adapter.training_parts.values():  # the modules training freezes / trains exist here too
        assert isinstance(moe.get_submodule(path), torch.nn.Module)
    assert type(moe.get_submodule("model.language_model.layers.0.mlp")).__name__ == "Qwen3VLMoeTextSparseMoeBlock"
    assert adapter.layout(SimpleNamespace(config=Qwen3VLMoeConfig()), (768, 768))[0].grid == (24, 24)


def test_qwen3_vl_moe_queries_and_keys_reproduce_the_layers_own_attention(moe):
    hidden = torch.randn(1, 7, moe.config.text_config.hidden_size)
    positions = torch.stack([torch.arange(7), torch.tensor([0, 1, 1, 2, 2, 3, 4]), torch.tensor([0, 1, 2, 1, 2, 3, 4])])
    pos = moe.model.language_model.rotary_emb(hidden, positions[:, None])
    assert_queries_and_keys_reproduce_attention(moe, moe.model.language_model.layers[0], hidden, pos)


@pytest.mark.parametrize("method", ["fastv", "pyramiddrop", "tome"])
def test_baselines_run_on_qwen3_vl_moe(moe, method):
    out, kept = compressed_vision_tokens(moe, samples()[1], adsc.CompressionConfig(method=method, layers=(1,), drop_ratio=0.5))
    assert torch.isfinite(out).all() and kept[-1] < kept[0]


def test_qwen3_vl_moe_router_loss_is_refused(moe):
    sample = samples()[0]
    handle = adsc.compress(moe, CFG)
    try:
        with pytest.raises(UnsupportedModelError, match="output_router_logits=True"):
            moe(**sample, output_router_logits=True)
    finally:
        handle.remove()
    moe.config.text_config.output_router_logits = True
    try:
        with pytest.raises(UnsupportedModelError, match="router auxiliary loss"):
            adsc.compress(moe, CFG)
    finally:
        moe.config.text_config.output_router_logits = False
