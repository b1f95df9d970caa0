"""Decoding through the shrunken KV cache."""

import pytest
import torch

import adsc
from adsc.tiny import tiny_llava

from .helpers import llava_ids, pad_batch

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)
NEW = 6


def greedy_without_cache(model, ids, mask, steps, **extra):
    """Reference decoding: recompute the whole sequence at every step, no cache."""
    for _ in range(steps):
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, **extra).logits
        nxt = logits[:, -1:].argmax(-1)
        ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt)], 1)
    return ids


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_cached_generate_equals_uncached_recomputation(attn):
    model = tiny_llava(layers=6, attn=attn)
    ids, mask, _ = pad_batch([llava_ids([1, 5, 6, 7]), llava_ids([1], n_images=2)], "left")
    pix = torch.randn(3, 3, 48, 48)
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad():
            cached = model.generate(input_ids=ids, attention_mask=mask, pixel_values=pix, max_new_tokens=NEW, do_sample=False)
        assert torch.equal(cached, greedy_without_cache(model, ids, mask, NEW, pixel_values=pix))
    finally:
        handle.remove()


def test_kv_cache_lengths_follow_the_schedule():
    model = tiny_llava(layers=6)
    ids, mask, _ = pad_batch([llava_ids([1, 5, 6, 7]), llava_ids([1], n_images=2)], "left")
    handle = adsc.compress(model, CFG)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, pixel_values=torch.randn(3, 3, 48, 48),
                             max_new_tokens=NEW, do_sample=False, return_dict_in_generate=True)
    handle.remove()
    trace = handle.last_trace
    text = [int((ids[b] != 31).logical_and(mask[b].bool()).sum()) for b in range(2)]
    decoded = NEW - 1  # the last sampled token is never fed back
    for b, images in enumerate([1, 2]):
        expected = [36 * images] * 2 + [18 * images] * 2 + [9 * images] * 2
        assert trace.vision_tokens(b) == expected
        assert trace.kv_lengths(b) == [v + text[b] + decoded for v in expected]
    physical = adsc.cache_lengths(out.past_key_values)
    widest = [max(trace.kv_lengths(b)[i] for b in range(2)) for i in range(6)]
    assert physical[2:] == widest[2:]  # compressed layers hold only the widest sample's survivors
    assert physical[0] == ids.shape[1] + decoded  # layer 0 keeps the full padded length generate relies on


def test_sampling_and_beam_search_run_on_the_compressed_cache():
    model = tiny_llava(layers=6)
    ids = torch.tensor([llava_ids([1, 5])])
    pix = torch.randn(1, 3, 48, 48)
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad():
            torch.manual_seed(0)
            sampled = model.generate(input_ids=ids, pixel_values=pix, max_new_tokens=NEW, do_sample=True, top_k=5)
            beams = model.generate(input_ids=ids, pixel_values=pix, max_new_tokens=NEW, num_beams=3, do_sample=False)
        assert sampled.shape[1] == ids.shape[1] + NEW
        assert beams.shape[1] <= ids.shape[1] + NEW
    finally:
        handle.remove()


def test_static_cache_is_refused_with_the_fix():
    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CFG)
    try:
        with pytest.raises(ValueError, match="needs a DynamicCache"):
            model.generate(input_ids=torch.tensor([llava_ids([1])]), pixel_values=torch.randn(1, 3, 48, 48),
                           max_new_tokens=2, cache_implementation="static")
    finally:
        handle.remove()


def test_cache_is_found_under_both_transformers_names():
    # transformers >= 5.24 passes the KV cache as `cache`, earlier versions as `past_key_values`;
    # missing it would leave decode steps unpatched (a padded batch then fails on mask length)
    from adsc.engine.hooks import cache_kwarg

    marker = object()
    assert cache_kwarg({"cache": marker}) is marker
    assert cache_kwarg({"past_key_values": marker}) is marker
    assert cache_kwarg({"cache": None, "past_key_values": marker}) is marker
    assert cache_kwarg({}) is None


class _DeviceReads(torch.overrides.TorchFunctionMode):
    """Counts reads of tensor values into Python (each one a GPU sync on a GPU), noting which
    happen while the decoder layers run."""

    READS = {torch.Tensor.__bool__, torch.Tensor.item, torch.Tensor.__int__, torch.Tensor.__float__,
             torch.Tensor.__index__, torch.Tensor.tolist}

    def __init__(self):
        super().__init__()
        self.in_layers, self.before, self.during = False, 0, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.READS:
            if self.in_layers:
                self.during += 1
            else:
                self.before += 1
        return func(*args, **(kwargs or {}))


def decode_step_reads(padded: bool, with_mask: bool, make_cache) -> dict:
    """{compressed: (device reads before the decoder layers, reads inside them)} of one decode step
    after a prefill into ``make_cache(model)``, for the plain model (False) and a compressed one."""
    reads = {}
    for patched in (False, True):
        model = tiny_llava(layers=6)
        layers = model.model.language_model.layers
        rows = [llava_ids([1, 5, 6, 7]), llava_ids([1, 5])] if padded else [llava_ids([1, 5, 6, 7])] * 2
        ids, mask, _ = pad_batch(rows, "left")
        handle = adsc.compress(model, CFG) if patched else None
        cache = make_cache(model)
        counter = _DeviceReads()
        layers[0].register_forward_pre_hook(lambda *a: setattr(counter, "in_layers", True), prepend=True)
        layers[-1].register_forward_hook(lambda *a: setattr(counter, "in_layers", False))
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, pixel_values=torch.randn(2, 3, 48, 48),
                           past_key_values=cache, use_cache=True).logits
            nxt = logits[:, -1:].argmax(-1)
            step = {"attention_mask": torch.cat([mask, torch.ones_like(nxt)], 1)} if with_mask else {}
            with counter:
                model(input_ids=nxt, past_key_values=cache, use_cache=True, **step)
        if handle is not None:
            handle.remove()
        reads[patched] = (counter.before, counter.during)
    return reads


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_decode_step_reads_the_device_at_most_once_and_never_inside_the_layers(padded, with_mask):
    """A read inside the decoder drains the GPU's queue; one per stage per step made eager decode
    host-bound on the H200 (docs/efficiency.md). Allowed: one read per step before the first layer
    (is the new token valid?), and none at all when no mask is given or a stage holds padding."""
    from transformers import DynamicCache

    reads = decode_step_reads(padded, with_mask, lambda model: DynamicCache(config=model.config))
    assert reads[True][1] == 0, reads
    extra = reads[True][0] - reads[False][0]
    assert extra == (1 if with_mask and not padded else 0), reads
