"""Every baseline keeps the engine's guarantees: cache, padding, kernels, Qwen2-VL."""

import pytest
import torch

import adsc

from .helpers import N_IMG, Replay, kept_sets, llava, llava_row, pad, pixels, qwen, qwen_inputs

NEW = 4
CONFIGS = {  # 6-layer tiny models, 36 tokens per image
    "fastv": dict(layers=(2,), budget=20),
    "pyramiddrop": dict(layers=(2, 3, 5), budget=16),
    "tome": dict(layers=(2,), budget=20),
    "random": dict(layers=(2, 4), budget=20),
}
METHODS = list(CONFIGS)


def compress(model, method):
    return adsc.compress(model, adsc.CompressionConfig(method=method, vision_tokens=N_IMG, **CONFIGS[method]))


def generate(model, **inputs):
    return model.generate(**inputs, max_new_tokens=NEW, do_sample=False, output_scores=True, return_dict_in_generate=True)


def assert_cached_equals_uncached(model, handle, method, inputs, extra=lambda ids: {}):
    """Greedy generate with the shrinking cache == full recomputation of each prefix without cache."""
    with torch.no_grad():
        out = generate(model, **inputs)
        prompt = inputs["input_ids"].shape[1]
        inner = handle.selector
        if method in ("fastv", "pyramiddrop"):  # they rank with the last token: replay the prefill's choice
            handle.selector = Replay(inner, kept_sets(handle.last_trace))
        try:
            rest = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
            for i in range(NEW):
                ids = out.sequences[:, : prompt + i]
                logits = model(input_ids=ids, use_cache=False, **rest, **extra(ids)).logits[:, -1]
                torch.testing.assert_close(logits, out.scores[i], atol=1e-4, rtol=1e-4)
                assert torch.equal(logits.argmax(-1), out.sequences[:, prompt + i])
        finally:
            handle.selector = inner


@pytest.mark.parametrize("method", METHODS)
def test_generate_with_cache_equals_uncached_recomputation(method):
    model = llava("sdpa")
    handle = compress(model, method)
    try:
        inputs = dict(input_ids=torch.tensor([llava_row(images=2)]), pixel_values=pixels(2))
        assert_cached_equals_uncached(model, handle, method, inputs)
        assert handle.last_trace.vision_tokens(0)[-1] < 2 * N_IMG
    finally:
        handle.remove()


@pytest.mark.parametrize("method", METHODS)
def test_padded_batch_equals_samples_alone(method):
    model = llava("sdpa")
    rows = [llava_row(prefix=(1, 5)), llava_row(prefix=(1, 5, 6, 7, 8), images=2, suffix=(9, 10))]
    pix = pixels(3)
    alone_pix = [pix[:1], pix[1:]]
    handle = compress(model, method)
    try:
        with torch.no_grad():
            alone = [generate(model, input_ids=torch.tensor([r]), pixel_values=p) for r, p in zip(rows, alone_pix)]
            alone_logits = [model(input_ids=torch.tensor([r]), pixel_values=p).logits[0] for r, p in zip(rows, alone_pix)]
            ids, mask, _ = pad(rows, "left")
            batch = generate(model, input_ids=ids, attention_mask=mask, pixel_values=pix)
            for b, single in enumerate(alone):
                assert torch.equal(batch.sequences[b, -NEW:], single.sequences[0, -NEW:])
                for step in range(NEW):
                    torch.testing.assert_close(batch.scores[step][b], single.scores[step][0], atol=1e-4, rtol=1e-4)
            ids, mask, _ = pad(rows, "right")
            logits = model(input_ids=ids, attention_mask=mask, pixel_values=pix).logits
            for b, single in enumerate(alone_logits):
                torch.testing.assert_close(logits[b, : len(rows[b])], single, atol=1e-4, rtol=1e-4)
    finally:
        handle.remove()


@pytest.mark.parametrize("method", METHODS)
def test_sdpa_equals_eager(method):
    rows = [llava_row(), llava_row(prefix=(1, 5, 6, 7), images=2)]
    ids, mask, pos = pad(rows, "left")
    results = {}
    for attn in ("eager", "sdpa"):
        model = llava(attn)
        handle = compress(model, method)
        try:
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixels(3)).logits
            results[attn] = logits, [[handle.last_trace.positions(l, b) for l in range(6)] for b in range(2)]
        finally:
            handle.remove()
    torch.testing.assert_close(results["eager"][0] * mask[..., None], results["sdpa"][0] * mask[..., None], atol=1e-4, rtol=1e-4)
    for b in range(2):
        for a, c in zip(results["eager"][1][b], results["sdpa"][1][b]):
            assert torch.equal(a, c)


@pytest.mark.parametrize("method", METHODS)
def test_qwen2_vl_cached_decoding_equals_uncached(method):
    model = qwen()
    handle = compress(model, method)
    inputs = qwen_inputs(grids=((1, 8, 8), (1, 4, 12)))  # 16 and 12 tokens, different grids
    mm = lambda ids: (ids == 31).long()  # noqa: E731  mm_token_type_ids of the tiny model's image token
    try:
        with torch.no_grad():
            # greedy decoding by hand (prefill with the grids, then one token at a time on the cache)
            out = model(**inputs, use_cache=True)
            counts = handle.last_trace.vision_tokens(0)
            keeps = kept_sets(handle.last_trace)
            ids, cache, scores = inputs["input_ids"], out.past_key_values, [out.logits[:, -1]]
            for _ in range(NEW - 1):
                ids = torch.cat([ids, scores[-1].argmax(-1, keepdim=True)], 1)
                scores.append(model(input_ids=ids[:, -1:], past_key_values=cache, use_cache=True).logits[:, -1])
            inner = handle.selector
            if method in ("fastv", "pyramiddrop"):
                handle.selector = Replay(inner, keeps)
            try:
                for i, cached in enumerate(scores):
                    prefix = ids[:, : inputs["input_ids"].shape[1] + i]
                    full = model(input_ids=prefix, pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
                                 mm_token_type_ids=mm(prefix), use_cache=False).logits[:, -1]
                    torch.testing.assert_close(full, cached, atol=1e-4, rtol=1e-4)
            finally:
                handle.selector = inner
        assert counts[0] == 28 and counts[-1] < 28
    finally:
        handle.remove()
