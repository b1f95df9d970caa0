"""Gemma 3 facts beyond the shared oracle tests: image layout, the stage mask's window and image
blocks in original positions, the cache generate makes, q/k for the score-based methods, refusals."""

from types import SimpleNamespace

import pytest
import torch
from transformers import DynamicCache, Gemma3Config

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.adapters.base import AttentionPattern, UnsupportedModelError
from adsc.adapters.gemma3 import Gemma3Adapter
from adsc.engine.state import SequenceState, StageTable, key_layout, stage_mask
from adsc.engine.trace import cache_lengths
from adsc.methods.scores import attention_scores, slot_layout
from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_gemma3 import END_OF_IMAGE, START_OF_IMAGE, tiny_gemma3

from ..baselines.helpers import Replay, kept_sets
from .families.gemma3 import PER_IMAGE, gemma_ids, samples
from .family_checks import (
    CFG,
    assert_every_span_keeps_its_uniform_grid,
    assert_queries_and_keys_reproduce_attention,
    model_fixture,
)
from .test_families import run

model = model_fixture(tiny_gemma3)


def test_each_image_is_one_square_grid_where_the_model_scatters_its_features(model):
    sample = samples()[0]
    ids = sample["input_ids"]
    with torch.no_grad():
        embeds = model.model.get_input_embeddings()(ids)
        features = model.model.get_image_features(sample["pixel_values"]).pooler_output
    placed = model.model.get_placeholder_mask(ids, embeds, features)[..., 0]
    spans = adapter_for(model).vision_spans(model, ids, sample)[0]
    assert [(s.grid, s.extra) for s in spans] == [((4, 4), ()), ((4, 4), ())]
    assert torch.equal(torch.cat([s.token_positions() for s in spans]), placed[0].nonzero().flatten())
    markers = (ids[0] == START_OF_IMAGE) | (ids[0] == END_OF_IMAGE)
    assert not set(markers.nonzero().flatten().tolist()) & set(torch.cat([s.token_positions() for s in spans]).tolist())


def test_reference_tokens_from_a_config_alone():
    config = Gemma3Config()  # the released layout: 896 px SigLIP, 256 tokens per image
    adapter = adapter_for_config(config)
    assert isinstance(adapter, Gemma3Adapter) and adapter.fixed_grid
    assert adapter.reference_vision_tokens(SimpleNamespace(config=config)) == 256


def test_patterns_per_layer_follow_layer_types(model):
    adapter = adapter_for(model)
    window = model.config.text_config.sliding_window
    assert [adapter.mask_pattern(model, i) for i in range(6)] == [
        AttentionPattern(window, True), AttentionPattern(window, True), AttentionPattern(None, True)] * 2
    assert [adapter.rotary_kind(model, i) for i in range(3)] == ["sliding_attention"] * 2 + ["full_attention"]


def test_every_image_keeps_the_documented_uniform_grid(model):
    assert_every_span_keeps_its_uniform_grid(model, samples()[0], CFG)


def test_stage_mask_window_and_blocks_are_in_original_positions():
    """Brute force over one stage: query q sees key k iff both kept and (k <= q or same image) and q - k < window."""
    length, window = 20, 6
    block = torch.full((1, length), -1)
    block[0, 3:9], block[0, 12:16] = 0, 1  # two images
    keep = torch.ones(1, length, dtype=torch.bool)
    keep[0, [4, 6, 7, 13, 14]] = False  # dropped image tokens: the window must not reach further back for them
    seq = SequenceState(keep, block >= 0, [[]], (1,), blocks=block)
    table = StageTable.from_keep(keep, None)
    pattern = AttentionPattern(window=window, image_blocks=True)
    mask = stage_mask(table.kv_valid, table.width, "sdpa", torch.float32, pattern=pattern,
                      layout=key_layout(seq, table, table.width))[0, 0]
    orig = table.orig[0].tolist()
    for i, q in enumerate(orig):
        for j, k in enumerate(orig):
            same = block[0, q] >= 0 and block[0, q] == block[0, k]
            assert bool(mask[i, j]) == ((k <= q or same) and q - k < window), (q, k)
    # a decode step two tokens later: text, windowed from its own original position (length + 1)
    table.kv_valid = torch.cat([table.kv_valid, torch.ones(1, 2, dtype=torch.bool)], 1)
    step = stage_mask(table.kv_valid, 1, "sdpa", torch.float32, pattern=pattern,
                      layout=key_layout(seq, table, table.kv_valid.shape[1]))[0, 0, 0]
    seen = [k for k, s in zip(orig + [length, length + 1], step.tolist()) if s]
    assert seen == [k for k in orig + [length, length + 1] if length + 1 - k < window]


def test_flash_attention_is_refused_for_a_windowed_or_block_pattern():
    valid = torch.ones(1, 4, dtype=torch.bool)
    layout = (torch.arange(4)[None], None)
    with pytest.raises(ValueError, match="needs attn_implementation 'eager' or 'sdpa'"):
        stage_mask(valid, 4, "flash_attention_2", torch.float16, pattern=AttentionPattern(window=2), layout=layout)


def test_without_token_type_ids_the_model_and_adsc_are_causal_alike(model):
    """The model applies image blocks only given token_type_ids; so does adsc (no-drop stages == unpatched)."""
    sample = {k: v for k, v in samples()[0].items() if k != "token_type_ids"}
    handle = adsc.compress(model, CFG.replace(drop_ratio=0.0))
    try:
        out = run(model, **sample)
    finally:
        handle.remove()
    assert (out - run(model, **sample)).abs().max() <= 1e-6
    assert (run(model, **sample) - run(model, **samples()[0])).abs().max() > 1e-3  # the blocks do matter


@pytest.mark.parametrize("method", ["adsc", "tome"])
def test_sliding_cache_layers_keep_window_minus_one_slots_and_equal_full_length_ones(method):
    """generate's cache for Gemma 3 has transformers' sliding layers, which keep the last window - 1
    *slots*: in a compressed stage those reach further back than as many positions, so they hold
    every key the window lets a query see, and the stage mask's window (original positions) masks
    the rest. Logits equal a full-length cache's (every slot kept) and uncached recomputation; each
    sliding layer holds min(its stage's keys, window - 1), so no compressed layer holds more than
    the uncompressed model's. Window 6 on 44-token prompts, 8 decode steps: the window bites in the
    prefill of every stage and again as the steps move it."""
    model, new, window = tiny_gemma3(layers=6, attn="sdpa", sliding_window=6), 8, 6
    sample = samples()[0]
    config = adsc.CompressionConfig(method=method, layers=(2, 4), drop_ratio=0.5)
    greedy = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, output_logits=True, return_dict_in_generate=True)
    with torch.no_grad():
        plain_cache = DynamicCache(config=model.config)
        model.generate(**sample, past_key_values=plain_cache, **greedy)
        handle = adsc.compress(model, config)
        try:
            sliding = DynamicCache(config=model.config)
            assert sliding.is_sliding == [True, True, False, True, True, False]  # what generate makes for Gemma 3
            out = model.generate(**sample, past_key_values=sliding, **greedy)
            trace = handle.last_trace
            full_length = DynamicCache()  # layers made on the fly: every one full length
            reference = model.generate(**sample, past_key_values=full_length, **greedy)
            assert not any(full_length.is_sliding)
            prompt = sample["input_ids"].shape[1]
            for i in range(new):
                torch.testing.assert_close(out.logits[i], reference.logits[i], atol=1e-5, rtol=1e-5)
                ids = out.sequences[:, : prompt + i]
                logits = model(input_ids=ids, pixel_values=sample["pixel_values"],
                               token_type_ids=(ids == IMAGE_TOKEN).long(), use_cache=False).logits[:, -1]
                torch.testing.assert_close(logits, out.logits[i], atol=1e-4, rtol=1e-4)
        finally:
            handle.remove()
    assert sliding.is_sliding == [True, True, False, True, True, False]
    held = cache_lengths(sliding)
    keys = trace.kv_lengths(0)
    assert cache_lengths(full_length) == keys
    assert held == [min(k, window - 1) if s else k for k, s in zip(keys, sliding.is_sliding)]
    assert any(k > window - 1 for k, s in zip(keys[2:], sliding.is_sliding[2:]) if s)  # a stage's window did bite
    assert all(h <= p for h, p in zip(held, cache_lengths(plain_cache)))


def test_a_sliding_cache_narrower_than_the_models_window_is_refused():
    """A sliding cache layer keeping fewer slots than the layer's window would drop keys the window
    still lets a query see."""
    from transformers.cache_utils import DynamicSlidingWindowLayer

    model, sample = tiny_gemma3(layers=6, attn="sdpa"), samples()[0]
    cache = DynamicCache(config=model.config)
    cache.layers[3] = DynamicSlidingWindowLayer(sliding_window=model.config.text_config.sliding_window - 1)
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad(), pytest.raises(ValueError, match="DynamicSlidingWindowLayer on the model's windowed layers"):
            model(**sample, past_key_values=cache, use_cache=True)
    finally:
        handle.remove()


def test_queries_and_keys_reproduce_a_local_layers_own_attention(model):
    """q/k norms, the local RoPE base and query_pre_attn_scalar, as the layer applies them."""
    hidden = torch.randn(1, 7, model.config.text_config.hidden_size)
    pos = model.model.language_model.rotary_emb(hidden, torch.arange(7)[None], "sliding_attention")
    assert_queries_and_keys_reproduce_attention(model, model.model.language_model.layers[0], hidden, pos)


@pytest.mark.parametrize("mode", ["last", "mean"])
def test_attention_scores_follow_the_local_layers_window_and_image_blocks(model, mode):
    """The scores FastV / PyramidDrop rank by == the attention weights the model's own layer 1
    (local: 24-token window, bidirectional images) computes, mean over heads."""
    sample = samples()[0]
    length = sample["input_ids"].shape[1]
    with torch.no_grad():
        out = model(**sample, output_hidden_states=True, output_attentions=True)
    text = model.model.language_model
    hidden = out.hidden_states[1]  # the input of layer 1
    pos = text.rotary_emb(hidden, torch.arange(length)[None], "sliding_attention")
    adapter = adapter_for(model)
    seq = SimpleNamespace(blocks=adapter.attention_blocks(model, sample["input_ids"], sample))
    valid = torch.ones(1, length, dtype=torch.bool)
    scores = attention_scores(adapter, text.layers[1], hidden, pos, valid, mode, adapter.mask_pattern(model, 1),
                              slot_layout(seq, torch.arange(length)[None]))
    weights = out.attentions[1].float().mean(1)  # (1, T, T), mean over heads
    expected = weights[:, -1] if mode == "last" else weights.mean(1)
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-4)
    if mode == "last":  # the last token does not see keys 24 or more positions back
        assert (scores[0, : length - 24] == 0).all() and (scores[0, length - 24 :] > 0).all()


@pytest.mark.parametrize("method, layers", [("random", (2, 4)), ("fastv", (2,)), ("pyramiddrop", (2, 3, 5)), ("tome", (2,))])
def test_baselines_generate_with_cache_equals_uncached_recomputation(method, layers):
    """PyramidDrop renumbers positions on Gemma's 1-D RoPE: its decode shift is kept per rotary kind
    (local and global bases), else the cached steps would rotate one kind by the other's angles."""
    model, sample, new = tiny_gemma3(layers=6, attn="sdpa"), samples()[0], 4
    handle = adsc.compress(model, adsc.CompressionConfig(method=method, layers=layers, drop_ratio=0.5))
    try:
        with torch.no_grad():
            out = model.generate(**sample, max_new_tokens=new, do_sample=False, output_scores=True,
                                 return_dict_in_generate=True)
            assert handle.last_trace.vision_tokens(0)[-1] < 2 * PER_IMAGE
            # fastv / pyramiddrop rank with the last token, which moves: replay the prefill's choice
            handle.selector = Replay(handle.selector, kept_sets(handle.last_trace))
            prompt = sample["input_ids"].shape[1]
            for i in range(new):
                ids = out.sequences[:, : prompt + i]
                logits = model(input_ids=ids, pixel_values=sample["pixel_values"], token_type_ids=(ids == IMAGE_TOKEN).long(),
                               use_cache=False).logits[:, -1]
                torch.testing.assert_close(logits, out.scores[i], atol=1e-4, rtol=1e-4)
    finally:
        handle.remove()


def test_bidirectional_text_attention_and_odd_runs_are_refused(model):
    bidirectional = tiny_gemma3(layers=3)
    bidirectional.config.text_config.use_bidirectional_attention = True
    with pytest.raises(UnsupportedModelError, match="use_bidirectional_attention=True"):
        adsc.compress(bidirectional, CFG.replace(layers=(2,)))
    assert adsc.get_handle(bidirectional) is None and not bidirectional.model._forward_pre_hooks
    ids = torch.cat([gemma_ids([1], 1)[:, :-4], torch.tensor([[IMAGE_TOKEN, 9]])], 1)  # 17 image tokens in one run
    with pytest.raises(ValueError, match=f"not a multiple of mm_tokens_per_image \\({PER_IMAGE}\\)"):
        adapter_for(model).vision_spans(model, ids, {})


def test_the_processors_layout_is_the_adapters(model):
    """Gemma3Processor's own output: one 4 x 4 span per image, its image blocks exactly the spans."""
    from PIL import Image

    from adsc.tiny_gemma3 import tiny_gemma3_processor

    image = Image.new("RGB", (40, 30), "red")
    inputs = tiny_gemma3_processor()(images=[[image], [image, image]], return_tensors="pt", padding=True,
                                     text=["what <start_of_image> color", "<start_of_image> a <start_of_image> b"])
    adapter = adapter_for(model)
    spans = adapter.vision_spans(model, inputs["input_ids"], inputs)
    blocks = adapter.attention_blocks(model, inputs["input_ids"], inputs)
    assert [[s.grid for s in sample] for sample in spans] == [[(4, 4)], [(4, 4), (4, 4)]]
    for b, sample in enumerate(spans):
        assert [blocks[b, s.token_positions()].unique().tolist() for s in sample] == [[k] for k in range(len(sample))]
        assert int((blocks[b] >= 0).sum()) == PER_IMAGE * len(sample)
