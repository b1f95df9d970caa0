"""The fixed-capacity per-layer KV cache (adsc.StageCache): same tokens as DynamicCache and as no
cache at all, bytes equal to the analytical KV, no device read in a decode step."""

import pytest
import torch

import adsc
import adsc.engine.cache
from adsc.engine.forward_calls import ForwardCall
from adsc.engine.state import stage_mask
from adsc.profiling.flops import Conventions, account
from adsc.profiling.measure import text_tokens
from adsc.profiling.shapes import shape_from_config
from adsc.tiny import IMAGE_TOKEN, tiny_llava, tiny_qwen2_vl

from .helpers import llava_ids, mm_types, pad_batch, qwen_sample
from .test_generate import decode_step_reads, greedy_without_cache

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)
NEW = 6


def llava_case(padded: bool):
    model = tiny_llava(layers=6)
    rows = [llava_ids([1, 5, 6, 7]), llava_ids([1], n_images=2)] if padded else [llava_ids([1, 5])]
    ids, mask, _ = pad_batch(rows, "left")
    images = 3 if padded else 1
    return model, dict(input_ids=ids, attention_mask=mask, pixel_values=torch.randn(images, 3, 48, 48))


def qwen_case(padded: bool):
    model = tiny_qwen2_vl(layers=6)
    first, pix_first = qwen_sample([(1, 8, 8)])
    if not padded:
        ids, mask, _ = pad_batch([first])
        pix, grids = pix_first, [[1, 8, 8]]
    else:
        second, pix_second = qwen_sample([(1, 4, 8)], text=(40,))
        ids, mask, _ = pad_batch([first, second], "left")
        pix, grids = torch.cat([pix_first, pix_second]), [[1, 8, 8], [1, 4, 8]]
    return model, dict(input_ids=ids, attention_mask=mask, pixel_values=pix, image_grid_thw=torch.tensor(grids),
                       mm_token_type_ids=mm_types(ids))


def uncached(model, inputs, steps):
    if "image_grid_thw" not in inputs:
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        return greedy_without_cache(model, inputs["input_ids"], inputs["attention_mask"], steps, **extra)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    for _ in range(steps):  # Qwen2-VL: its M-RoPE positions come from the model, recomputed every step
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=inputs["pixel_values"],
                       image_grid_thw=inputs["image_grid_thw"], mm_token_type_ids=mm_types(ids), use_cache=False).logits
        nxt = logits[:, -1:].argmax(-1)
        ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt)], 1)
    return ids


@pytest.mark.parametrize("case", [llava_case, qwen_case], ids=["llava", "qwen2_vl"])
@pytest.mark.parametrize("padded", [False, True], ids=["batch1", "padded"])
def test_stage_cache_generate_equals_dynamic_cache_and_uncached(case, padded):
    model, inputs = case(padded)
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad():
            greedy = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
            dynamic = model.generate(**inputs, **greedy)
            cache = adsc.StageCache(model.config, max_new_tokens=NEW)
            fixed = model.generate(**inputs, **greedy, cache=cache)
            reference = uncached(model, inputs, NEW)
        assert torch.equal(fixed, dynamic)
        assert torch.equal(fixed, reference)
        trace = handle.last_trace
        widest = [max(trace.kv_lengths(b)[i] for b in range(trace.batch_size)) for i in range(6)]
        # every layer holds exactly its stage's widest kept prompt + the fed-back tokens, no more
        assert cache.capacities() == widest
        assert widest[2] < widest[0] and widest[4] < widest[2]
    finally:
        handle.remove()


@pytest.mark.parametrize("compressed", [False, True])
def test_stage_cache_bytes_equal_the_analytical_kv(compressed):
    model, inputs = llava_case(padded=False)
    handle = adsc.compress(model, CFG) if compressed else None
    cache = adsc.StageCache(model.config, max_new_tokens=NEW)
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, cache=cache)
    vision = handle.last_trace.vision_tokens(0) if handle else None
    if handle is not None:
        handle.remove()
    acc = account(shape_from_config(model.config), vision, text_tokens(inputs["input_ids"], IMAGE_TOKEN), NEW, 1,
                  Conventions(kv_dtype_bytes=4))
    assert adsc.cache_bytes(cache) == acc.kv_bytes
    per_layer = [row.kv_bytes for row in acc.layers]
    token = 2 * model.config.text_config.num_key_value_heads * (64 // 4) * 4
    assert [c * token for c in cache.capacities()] == per_layer


def test_stage_cache_refuses_half_given_sizes():
    """(Sliding-window models are served with full-length layers: tests/core/test_compile.py, Gemma 3.)"""
    with pytest.raises(ValueError, match="not both"):
        adsc.StageCache(num_layers=2)
    with pytest.raises(ValueError, match="slot_multiple must be a whole number >= 1"):
        adsc.StageCache(num_layers=2, room=2, slot_multiple=0)


def test_transformers_static_cache_is_still_refused_and_names_stage_cache():
    model, inputs = llava_case(padded=False)
    handle = adsc.compress(model, CFG)
    try:
        with pytest.raises(ValueError, match="adsc.StageCache"):
            model.generate(**inputs, max_new_tokens=2, cache_implementation="static")
    finally:
        handle.remove()


@pytest.mark.parametrize("compressed", [True, False])
def test_a_stage_cache_too_small_for_generate_says_so_and_a_full_one_works(compressed):
    """Eager steps count the room on the host: a generate longer than the cache's max_new_tokens gets
    a clear error at the step that would not fit (not an out-of-bounds index inside a layer), a
    prompt into a used cache is told to reset() it, and the room is whole again after reset()."""
    model, inputs = llava_case(padded=False)
    handle = adsc.compress(model, CFG) if compressed else None
    try:
        cache = adsc.StageCache(model.config, max_new_tokens=3)
        with pytest.raises(ValueError, match=r"room for 2 decode-step tokens.*max_new_tokens=3\).*at least generate's"):
            model.generate(**inputs, max_new_tokens=5, do_sample=False, cache=cache)
        cache.reset()
        model.generate(**inputs, max_new_tokens=3, do_sample=False, cache=cache)
        with pytest.raises(ValueError, match=r"reset\(\) first"):
            model.generate(**inputs, max_new_tokens=2, do_sample=False, cache=cache)
        cache.reset()
        assert cache.decode_tokens == 0
        model.generate(**inputs, max_new_tokens=3, do_sample=False, cache=cache)
        assert cache.decode_tokens == 2
    finally:
        if handle is not None:
            handle.remove()


def test_a_reset_stage_cache_takes_a_prompt_whose_stages_fit_with_room_and_names_one_that_does_not():
    """After reset() a layer keeps the size its first prefill gave it: a batch of the same padded
    width whose stages keep fewer tokens decodes exactly as eagerly; one whose compressed stage keeps
    more (more text beside the image) is refused before it decodes, since its decode slots would run
    past the buffer (they used to: an out-of-bounds index at a later step)."""
    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CFG)

    def batch(prefixes):  # two samples of one image, left-padded to one width of 64
        rows = [llava_ids(p) for p in prefixes]
        ids = torch.tensor([[0] * (64 - len(r)) + r for r in rows])
        return dict(input_ids=ids, attention_mask=(torch.arange(64) >= 64 - torch.tensor([[len(r)] for r in rows])).long(),
                    pixel_values=torch.randn(2, 3, 48, 48))

    try:
        cache = adsc.StageCache(model.config, max_new_tokens=4)
        greedy = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False)
        for prefixes in ([[1, 5, 6, 7, 8, 9], [1]], [[1, 5], [1, 6, 7]]):  # the second keeps fewer
            inputs = batch(prefixes)
            cache.reset()
            assert torch.equal(model.generate(**inputs, **greedy, cache=cache), model.generate(**inputs, **greedy))
        cache.reset()
        wider = batch([[1] * 3, [1] * 9])
        with pytest.raises(adsc.engine.cache.StageCacheTooSmall, match=r"layer 2 was sized .* \+ 3 decode slots: make a new"):
            model.generate(**wider, **greedy, cache=cache)
        # slot_multiple: every layer's prompt slots rounded up (then the room): the wider batch fits after the first
        rounded = adsc.StageCache(model.config, max_new_tokens=4, slot_multiple=16)
        model.generate(**batch([[1, 5, 6, 7, 8, 9], [1]]), **greedy, cache=rounded)
        assert all((c - 3) % 16 == 0 for c in rounded.capacities())
        rounded.reset()
        assert torch.equal(model.generate(**wider, **greedy, cache=rounded), model.generate(**wider, **greedy))
    finally:
        handle.remove()


@pytest.mark.parametrize("padded", [False, True])
def test_a_stage_cache_decode_step_never_reads_the_device(padded):
    """With fixed shapes a decode step is pure tensor work: no read at all beyond what the
    uncompressed model does (a DynamicCache decode step needs one, tests/core/test_generate.py)."""
    reads = decode_step_reads(padded, True, lambda model: adsc.StageCache(model.config, room=2))
    assert reads[True] == reads[False], reads



def _decode(model, inputs, cache, chunks, each=lambda: None):
    """Last-position logits of a prefill into ``cache``, then of a forward per chunk of new ids
    ((B, q) tensors; ``each`` is called before every such forward)."""
    with torch.no_grad():
        out = [model(**inputs, cache=cache, use_cache=True).logits[:, -1]]
        mask = inputs["attention_mask"]
        for chunk in chunks:
            each()
            mask = torch.cat([mask, torch.ones_like(chunk)], 1)
            out.append(model(input_ids=chunk, attention_mask=mask, cache=cache, use_cache=True).logits[:, -1])
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_one_token_stage_cache_steps_reuse_the_masks_of_the_first(attn, monkeypatch):
    """A StageCache's one-token mask is a view of a buffer the steps write in place, so it is built at
    the first decode step and reused after (sdpa); masks that are not views (eager's additive
    float mask) are rebuilt every step. Logits equal a DynamicCache's either way, and a step of
    several tokens (a new turn) writes every stage's slots too."""
    from transformers import DynamicCache

    from adsc.engine import hooks

    model, inputs = llava_case(padded=True)
    model.set_attn_implementation(attn)
    chunks = [torch.full((2, 1), 7 + i) for i in range(3)] + [torch.tensor([[11, 12], [13, 14]])]
    handle = adsc.compress(model, CFG)
    built, per_step = [], []
    monkeypatch.setattr(hooks, "stage_mask", lambda *a, **k: built.append(1) or stage_mask(*a, **k))
    try:
        dynamic = _decode(model, inputs, DynamicCache(config=model.config), chunks)
        fixed = _decode(model, inputs, adsc.StageCache(model.config, room=5), chunks,
                        each=lambda: per_step.append(len(built)) or built.clear())
        per_step = per_step[1:] + [len(built)]  # masks built by each decode step
    finally:
        handle.remove()
    stages = len(CFG.layers)
    assert per_step == ([stages, 0, 0, stages] if attn == "sdpa" else [stages] * 4), per_step
    for a, b in zip(fixed, dynamic):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _step_before(layer):
    call = ForwardCall.find(layer)
    return None if call is None else call.before


def test_layer_before_a_stage_gets_a_probe_only_for_selectors_that_read_it():
    """FastV reads the attention of the layer before each stage: only then does that layer get a
    step (a probe), so the other methods' decode steps do nothing there; a selector assigned later
    gets (or loses) the probes, and remove() takes them off. No decoder layer gets a hook (a
    hooked module takes nn.Module's slow call path on every decode step)."""
    model = tiny_llava(layers=6)
    layers = model.model.language_model.layers
    before = layers[1]  # CFG's first stage starts at layer 2
    handle = adsc.compress(model, CFG)
    plain = handle.selector
    try:
        assert _step_before(before) is None and "forward" not in before.__dict__
        assert all(_step_before(layer) is not None for layer in layers[2:])
        handle.selector = type("ReadsBefore", (adsc.engine.Selector,), {"reads_layer_before": True})()
        assert _step_before(before) is not None
        handle.selector = plain
        assert _step_before(before) is None and "forward" not in before.__dict__
    finally:
        handle.remove()
    fastv = adsc.compress(model, adsc.CompressionConfig(method="fastv", layers=(2,), drop_ratio=0.5))
    assert _step_before(before) is not None
    assert not any(layer._forward_pre_hooks or layer._forward_hooks for layer in layers)
    fastv.remove()
    assert not any("forward" in layer.__dict__ for layer in layers)


@pytest.mark.parametrize("padded", [False, True], ids=["batch1", "padded"])
def test_a_stage_cache_prefill_of_real_tokens_builds_no_mask(padded, monkeypatch):
    """Prefilling a StageCache's empty buffers, SDPA's own causal path (aligned top-left) masks the
    unwritten slots, as in transformers' static-cache prefill: a stage whose slots are all real
    tokens needs no mask (none built, none converted per layer); one holding padding does.
    The tokens are checked against a DynamicCache and no cache in the tests above."""
    from adsc.engine import hooks

    model, inputs = llava_case(padded)
    handle = adsc.compress(model, CFG)
    masks = []
    monkeypatch.setattr(hooks, "stage_mask", lambda *a, **k: masks.append(stage_mask(*a, **k)) or masks[-1])
    try:
        with torch.no_grad():
            model(**inputs, cache=adsc.StageCache(model.config, room=3), use_cache=True)
    finally:
        handle.remove()
    assert len(masks) == len(CFG.layers)
    assert all(m is None for m in masks) != padded, [None if m is None else m.shape for m in masks]


def test_sdpa_causal_path_masks_the_unwritten_slots_of_a_prefill():
    """The oracle for fills_head: SDPA's is_causal with fewer queries than keys is aligned top-left
    (query i sees keys 0..i), so a prefill into the head of a buffer ignores the slots after it,
    whatever they hold; stage_mask then builds nothing for SDPA, and FlashAttention still gets
    the key validity (its causal alignment is bottom-right)."""
    torch.manual_seed(0)
    q_len, slots = 5, 9
    q, k, v = torch.randn(1, 2, q_len, 8), torch.randn(1, 2, slots, 8), torch.randn(1, 2, slots, 8)
    kv_valid = torch.arange(slots)[None] < q_len
    built = stage_mask(kv_valid, q_len, "sdpa", torch.float32, all_valid=False, end=torch.tensor(q_len))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=built)
    assert stage_mask(kv_valid, q_len, "sdpa", torch.float32, all_valid=True, end=torch.tensor(q_len), fills_head=True) is None
    got = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(got, expected)
    flash = stage_mask(kv_valid, q_len, "flash_attention_2", torch.float32, all_valid=True, fills_head=True)
    assert torch.equal(flash, kv_valid.to(torch.int32))
    assert stage_mask(kv_valid, 1, "sdpa", torch.float32, all_valid=True, fills_head=True) is not None  # one query: not causal


def test_one_token_dynamic_cache_steps_reuse_no_mask_until_padding_arrives(monkeypatch):
    """With a DynamicCache, a stage whose keys are all real tokens needs no mask in a one-token step
    (SDPA's own path): decided at the first step and kept, not rebuilt per step; a padding token
    arriving makes every stage build its mask again, each step. Logits equal a StageCache's, which
    reads the same validity from its fixed buffer."""
    from transformers import DynamicCache

    from adsc.engine import hooks

    model, inputs = llava_case(padded=False)
    handle = adsc.compress(model, CFG)
    built, per_step = [], []
    monkeypatch.setattr(hooks, "stage_mask", lambda *a, **k: built.append(1) or stage_mask(*a, **k))
    real = [1, 1, 1, 0, 1]  # the fourth new token is padding

    def run(cache, count):
        mask, out = inputs["attention_mask"], []
        with torch.no_grad():
            out.append(model(**inputs, cache=cache, use_cache=True).logits[:, -1])
            for i, flag in enumerate(real):
                built.clear()
                mask = torch.cat([mask, torch.tensor([[flag]])], 1)
                step = model(input_ids=torch.tensor([[7 + i]]), attention_mask=mask, cache=cache, use_cache=True)
                out.append(step.logits[:, -1])
                if count:
                    per_step.append(len(built))
        return out

    try:
        dynamic = run(DynamicCache(config=model.config), True)
        fixed = run(adsc.StageCache(model.config, room=len(real)), False)
    finally:
        handle.remove()
    stages = len(CFG.layers)
    assert per_step == [stages, 0, 0, stages, stages], per_step
    for i, (a, b) in enumerate(zip(fixed, dynamic)):
        if i != 4:  # a padding query's own output is never read
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["adsc", "pyramiddrop"])
def test_decode_steps_keep_the_models_rotary_unless_the_selector_shifts_it(method):
    """A decode step's new token sits at the same original position in every stage, so the stage layers
    get the model's own (cos, sin), untouched (no per-stage call); PyramidDrop's renumbered positions
    (LLaVA's default) shift the new token per stage, so there the stages get their own."""
    model, inputs = llava_case(padded=False)
    handle = adsc.compress(model, adsc.CompressionConfig(method=method, layers=(2, 4), drop_ratio=0.5))
    layers = model.model.language_model.layers
    given = {}

    def record(idx):
        def probe(module, args, kwargs):
            given[idx] = kwargs["position_embeddings"]
        return probe

    # on the attention modules: inside the layers, after adsc's step before each layer
    probes = [layers[i].self_attn.register_forward_pre_hook(record(i), with_kwargs=True) for i in (0, 4)]
    try:
        with torch.no_grad():
            cache = adsc.StageCache(model.config, room=2)
            token = model(**inputs, cache=cache, use_cache=True).logits[:, -1:].argmax(-1)
            model(input_ids=token, cache=cache, use_cache=True)
    finally:
        for probe in probes:
            probe.remove()
        handle.remove()
    assert (given[4] is given[0]) == (method == "adsc")
    assert handle.selector.shifts_decode_positions(cache._adsc_state) == (method == "pyramiddrop")
