"""The compressed forward against references: identity at ratio 0, masking, padding, kernels."""

import pytest
import torch

import adsc
from adsc.tiny import tiny_llava, tiny_qwen2_vl

from .helpers import llava_ids, mm_types, pad_batch, qwen_sample, valid_text_positions

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


@pytest.fixture(scope="module")
def llava():
    return tiny_llava(layers=6, attn="eager")


def pixels(n, seed=0):
    return torch.randn(n, 3, 48, 48, generator=torch.Generator().manual_seed(seed))


def run(model, **inputs):
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("config", [adsc.CompressionConfig(layers=(), drop_ratio=0.5), CFG.replace(drop_ratio=0.0)])
def test_no_drop_reproduces_unpatched_model(llava, config):
    ids = torch.tensor([llava_ids([1, 5, 6])])
    ref = run(llava, input_ids=ids, pixel_values=pixels(1))
    handle = adsc.compress(llava, config)
    try:
        out = run(llava, input_ids=ids, pixel_values=pixels(1))
    finally:
        handle.remove()
    assert (out - ref).abs().max() <= 1e-6


def masked_reference(model, trace, inputs):
    """Unpatched model; each layer sees only the keys the compressed layer kept, positions unchanged."""
    ids = inputs["input_ids"]
    batch, length = ids.shape
    valid = inputs.get("attention_mask", torch.ones_like(ids)).bool()
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    eye = torch.eye(length, dtype=torch.bool)
    hooks = []
    for idx, layer in enumerate(model.model.language_model.layers):
        kept = torch.zeros(batch, length, dtype=torch.bool)
        for b in range(batch):
            kept[b, trace.positions(idx, b)] = True
        allowed = (causal[None] & (kept & valid)[:, None, :]) | eye
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


@pytest.mark.parametrize("pattern", ["grid2d", "stride1d"])
def test_dropping_equals_masking_with_original_positions(llava, pattern):
    rows = [llava_ids([1, 5, 6]), llava_ids([1, 9], n_images=2)]
    ids, mask, pos = pad_batch(rows, "left")
    inputs = dict(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixels(3))
    handle = adsc.compress(llava, CFG.replace(pattern=pattern))
    try:
        out = run(llava, **inputs)
        trace = handle.last_trace
    finally:
        handle.remove()
    ref = masked_reference(llava, trace, inputs)
    text = valid_text_positions(ids, mask)
    assert (out - ref)[text].abs().max() <= 1e-5
    # survivors of the last stage match as well; dropped positions are zeros
    for b in range(2):
        kept = trace.vision_positions(5, b)
        assert (out[b, kept] - ref[b, kept]).abs().max() <= 1e-5
        assert trace.vision_tokens(b) == [36 * (b + 1)] * 2 + [18 * (b + 1)] * 2 + [9 * (b + 1)] * 2


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_samples_alone(llava, side):
    rows = [llava_ids([1, 5, 6, 7, 8, 9]), llava_ids([1], n_images=2), [1, 5, 6, 7]]  # the last has no image
    images = [pixels(1, 1), pixels(2, 2), None]
    ids, mask, pos = pad_batch(rows, side)
    handle = adsc.compress(llava, CFG)
    try:
        batched = run(llava, input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=torch.cat(images[:2]))
        for b, row in enumerate(rows):
            alone = run(llava, input_ids=torch.tensor([row]), pixel_values=images[b])
            where = mask[b].bool()
            assert (batched[b, where] - alone[0]).abs().max() <= 1e-5, f"sample {b}"
    finally:
        handle.remove()


def test_sdpa_equals_eager():
    rows = [llava_ids([1, 5, 6]), llava_ids([1], n_images=2)]
    ids, mask, pos = pad_batch(rows, "left")
    inputs = dict(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixels(3))
    outs = {}
    for attn in ("eager", "sdpa"):
        model = tiny_llava(layers=6, attn=attn)
        handle = adsc.compress(model, CFG)
        outs[attn] = run(model, **inputs)
        handle.remove()
    text = valid_text_positions(ids, mask)
    assert (outs["eager"] - outs["sdpa"])[text].abs().max() <= 1e-5


def test_remove_restores_bit_identical_outputs(llava):
    ids = torch.tensor([llava_ids([1, 5, 6])])
    before = run(llava, input_ids=ids, pixel_values=pixels(1))
    handle = adsc.compress(llava, CFG)
    compressed = run(llava, input_ids=ids, pixel_values=pixels(1))
    handle.remove()
    after = run(llava, input_ids=ids, pixel_values=pixels(1))
    assert not torch.equal(before, compressed)
    assert torch.equal(before, after)
    assert adsc.get_handle(llava) is None


def test_qwen2_vl_two_grids_in_one_sample_batched_with_padding():
    model = tiny_qwen2_vl(layers=6, attn="eager")
    a_ids, a_pix = qwen_sample([(1, 8, 8), (1, 4, 12)])  # 16 and 12 tokens, different grids
    b_ids, b_pix = qwen_sample([(1, 12, 8)], text=(40,))
    grids = torch.tensor([[1, 8, 8], [1, 4, 12], [1, 12, 8]])
    ids, mask, _ = pad_batch([a_ids, b_ids], "left")
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad():
            batched = model(input_ids=ids, attention_mask=mask, pixel_values=torch.cat([a_pix, b_pix]), image_grid_thw=grids,
                            mm_token_type_ids=mm_types(ids)).logits
            trace = handle.last_trace
            assert trace.vision_tokens(0)[-1] == 4 + 3  # 16 -> 8 -> 4 and 12 -> 6 -> 3, each on its own grid
            for b, (row, pix, g) in enumerate([(a_ids, a_pix, grids[:2]), (b_ids, b_pix, grids[2:])]):
                row = torch.tensor([row])
                alone = model(input_ids=row, pixel_values=pix, image_grid_thw=g, mm_token_type_ids=mm_types(row)).logits
                assert (batched[b, mask[b].bool()] - alone[0]).abs().max() <= 1e-5
    finally:
        handle.remove()
