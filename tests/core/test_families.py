"""The engine's oracle tests, once, over every family in tests/core/families.

References need no knowledge of a family: the unpatched model (itself, or with each layer's keys
restricted to what the compressed layer kept), uncached recomputation, each sample alone, the other
attention kernel. Family-specific facts (layouts, kept grids, refusals) live in test_<family>.py.
"""

import functools

import pytest
import torch
from peft import LoraConfig, get_peft_model

import adsc
from adsc.adapters import adapter_for
from adsc.adapters.base import AttentionPattern
from adsc.engine.state import as_pattern

from .families import CASES, FamilyCase

pytestmark = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
NEW = 5


@functools.cache
def model_of(case: FamilyCase, attn: str = "eager"):
    return case.build(attn)


def run(model, **inputs):
    with torch.no_grad():
        return model(**inputs).logits


def compressed(model, config, inputs):
    """(logits, trace) of one compressed forward; the model is left unpatched."""
    handle = adsc.compress(model, config)
    try:
        return run(model, **inputs), handle.last_trace
    finally:
        handle.remove()


def masked_reference(model, trace, inputs):
    """Unpatched model; each layer sees only the keys the compressed layer kept, positions unchanged.

    The rest of each layer's mask is the layer's own pattern (the adapter's ``mask_pattern``) in
    original positions: causal; a sliding window (``q - k < window``); tokens of one image block
    (the adapter's ``attention_blocks``, the model's own) seeing each other both ways."""
    ids = inputs["input_ids"]
    batch, length = ids.shape
    valid = inputs.get("attention_mask", torch.ones_like(ids)).bool()
    query, key = torch.arange(length)[:, None], torch.arange(length)[None, :]
    eye = query == key
    adapter = adapter_for(model)
    blocks = adapter.attention_blocks(model, ids, inputs)
    hooks = []
    for idx, layer in enumerate(adapter.decoder_layers(model)):
        pattern = as_pattern(adapter.mask_pattern(model, idx))
        assert isinstance(pattern, AttentionPattern), f"no reference for layer {idx}'s pattern {pattern!r}"
        own = (key <= query).expand(batch, length, length)
        if pattern.image_blocks and blocks is not None:
            own = own | (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)
        if pattern.window is not None:
            own = own & (query - key < pattern.window)
        kept = torch.zeros(batch, length, dtype=torch.bool)
        for b in range(batch):
            kept[b, trace.positions(idx, b)] = True
        allowed = (own & (kept & valid)[:, None, :]) | eye
        mask = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[:, None]

        def hook(module, args, kwargs, mask=mask):
            kwargs["attention_mask"] = mask
            return args, kwargs

        hooks.append(layer.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        return run(model, **inputs)
    finally:
        for h in hooks:
            h.remove()


def greedy_without_cache(case, model, inputs, steps):
    """Reference decoding: the whole sequence recomputed at every step, no cache."""
    inputs = dict(inputs)
    for _ in range(steps):
        if case.pass_positions:
            inputs["position_ids"] = (inputs["attention_mask"].cumsum(1) - 1).clamp(min=0)
        nxt = run(model, **inputs, use_cache=False)[:, -1:].argmax(-1)
        for key in ("input_ids", "attention_mask", *case.per_token):
            if key in inputs:
                grown = {"input_ids": nxt, "attention_mask": torch.ones_like(nxt)}.get(key, torch.zeros_like(nxt))
                inputs[key] = torch.cat([inputs[key], grown], 1)
    return inputs["input_ids"]


def last_layer(model):
    return len(adapter_for(model).decoder_layers(model)) - 1


@pytest.mark.parametrize("overrides, tolerance", [
    ({"layers": ()}, 0.0),  # nothing to compress: the model runs unpatched
    ({"drop_ratio": 0.0}, 1e-6),  # stages that keep everything: only the stage mask's own rounding
])
def test_no_drop_reproduces_unpatched_model(case, overrides, tolerance):
    model, inputs = model_of(case), case.batch(case.samples())
    out, _ = compressed(model, case.config.replace(**overrides), inputs)
    valid = inputs["attention_mask"].bool()
    assert (out - run(model, **inputs))[valid].abs().max() <= tolerance


@pytest.mark.parametrize("pattern", ["grid2d", "stride1d"])
def test_dropping_equals_masking_with_original_positions(case, pattern):
    model, inputs = model_of(case), case.batch(case.samples())
    out, trace = compressed(model, case.config.replace(pattern=pattern), inputs)
    ref = masked_reference(model, trace, inputs)
    for b in range(out.shape[0]):
        # every position the last layer computed: text, extra tokens (kept like text) and surviving grid tokens
        kept = trace.positions(last_layer(model), b)
        kept = kept[inputs["attention_mask"][b, kept].bool()]
        assert (out[b, kept] - ref[b, kept]).abs().max() <= 1e-5, f"sample {b}"
        assert trace.vision_tokens(b)[-1] < trace.vision_tokens(b)[0] or not trace.seq.spans[b]


def test_cached_generate_equals_uncached_and_kv_lengths_follow_the_schedule(case):
    model = model_of(case, "sdpa")
    inputs = {k: v for k, v in case.batch(case.samples()).items() if k != "position_ids"}  # generate makes its own
    handle = adsc.compress(model, case.config)
    try:
        with torch.no_grad():
            cached = model.generate(**inputs, max_new_tokens=NEW, do_sample=False)
        trace = handle.last_trace
        assert torch.equal(cached, greedy_without_cache(case, model, inputs, NEW))
    finally:
        handle.remove()
    for b, spans in enumerate(trace.seq.spans):
        grid_tokens = sum(span.length for span in spans)
        others = int(inputs["attention_mask"][b].sum()) - grid_tokens  # text and extra tokens: never dropped
        assert trace.vision_tokens(b)[0] == grid_tokens
        assert trace.kv_lengths(b) == [v + others + NEW - 1 for v in trace.vision_tokens(b)]


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_samples_alone(case, side):
    model, samples = model_of(case), case.samples()
    inputs = case.batch(samples, side)
    handle = adsc.compress(model, case.config)
    try:
        batched = run(model, **inputs)
        for b, alone in enumerate(samples):
            where = inputs["attention_mask"][b].bool()
            assert (batched[b, where] - run(model, **alone)[0]).abs().max() <= 1e-5, f"sample {b}"
    finally:
        handle.remove()


def test_sdpa_equals_eager(case):
    inputs = case.batch(case.samples())
    outs = {attn: compressed(model_of(case, attn), case.config, inputs)[0] for attn in ("eager", "sdpa")}
    valid = inputs["attention_mask"].bool()
    assert (outs["eager"] - outs["sdpa"])[valid].abs().max() <= 1e-5


def test_remove_restores_bit_identical_outputs(case):
    model, sample = model_of(case), case.samples()[0]
    before = run(model, **sample)
    handle = adsc.compress(model, case.config)
    during = run(model, **sample)
    handle.remove()
    assert not torch.equal(before, during)
    assert torch.equal(before, run(model, **sample))
    assert adsc.get_handle(model) is None


def test_lora_and_projector_get_gradients(case):
    model = case.build("sdpa")  # a fresh one: peft wraps it in place
    adapter = adapter_for(model)
    projector = adapter.training_parts["projector"].rsplit(".", 1)[-1]
    lora = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,  # random B, so both factors need gradient
                      target_modules=case.lora_targets, modules_to_save=[projector])
    model = get_peft_model(model, lora)
    inputs = case.batch(case.samples(), "right")
    vision = torch.isin(inputs["input_ids"], torch.tensor(adapter.vision_token_ids(model)))
    labels = inputs["input_ids"].masked_fill(vision | (inputs["attention_mask"] == 0), -100)
    handle = adsc.compress(model, case.config)
    try:
        model.train()
        model(**inputs, labels=labels).loss.backward()
    finally:
        handle.remove()
    trained = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trained) and any(projector in n for n in trained)
    missing = [n for n, g in trained.items() if g is None or not g.abs().sum() > 0]
    assert not missing, f"no gradient reached {missing[:5]}"
