"""ToMe merging equals a naive implementation: pairs, sizes, size-weighted means, logits."""

import pytest
import torch

import adsc
from adsc.adapters import LlavaAdapter
from adsc.methods import bipartite_match
from adsc.methods.scores import key_metric
from adsc.tiny import IMAGE_TOKEN

from .helpers import N_IMG, assert_matches_reference, llava, llava_row, naive_tome, pixels, reference_forward

ROW = torch.tensor([llava_row()])
PIX = pixels(1)


@pytest.mark.parametrize("n,r", [(36, 5), (35, 17), (7, 3), (1, 1), (10, 0)])
def test_bipartite_match_equals_naive_pairs(n, r):
    metric = torch.randn(n, 8, generator=torch.Generator().manual_seed(n + r))
    src, dst = bipartite_match(metric, r)
    pairs, _, _, _ = naive_tome(metric, torch.zeros(n, 1), torch.ones(n), r)
    assert list(zip(src.tolist(), dst.tolist())) == pairs
    assert len(pairs) == min(r, n // 2)


def _tome_reference(counts, stage_layers, proportional):
    """Merge with ``naive_tome`` before each stage layer, on the current image tokens in order."""
    vision = ROW[0] == IMAGE_TOKEN

    def reduce(l, h, idx, size, attn):
        if l not in stage_layers:
            return None
        layer = llava("eager").model.language_model.layers[l]
        vis = [i for i in range(len(idx)) if vision[idx[i]]]
        metric = key_metric(LlavaAdapter(), layer, h)[0, vis]
        r = len(vis) - counts[stage_layers.index(l)]
        pairs, merged, new_size, survivors = naive_tome(metric, h[0, vis], size[vis], r)
        h, size = h.clone(), size.clone()
        h[0, vis], size[vis] = merged, new_size
        gone = {vis[a] for a, _ in pairs}
        keep = torch.tensor([i for i in range(len(idx)) if i not in gone])
        return h[:, keep], idx[keep], size[keep]

    return reduce


@pytest.mark.parametrize("proportional", [True, False])
@pytest.mark.parametrize("attn_impl", ["eager", "sdpa"])
def test_tome_in_the_engine_equals_naive_merging(attn_impl, proportional):
    model = llava(attn_impl)
    config = adsc.CompressionConfig(method="tome", layers=(2,), budget=20, vision_tokens=N_IMG,
                                    options={"proportional_attention": proportional})
    handle = adsc.compress(model, config)
    sched = handle.schedule
    assert sched.stage_layers == (2, 3, 4, 5) and abs(sched.average - 20) <= 1
    try:
        with torch.no_grad():
            logits = model(input_ids=ROW, pixel_values=PIX).logits[0, -1]
            trace = handle.last_trace  # read before the reference runs the (same, eager) model
            reduce = _tome_reference(sched.keep_counts, sched.stage_layers, proportional)
            ref, seen = reference_forward(llava("eager"), ROW, PIX, reduce, proportional=proportional)
        assert_matches_reference(trace, seen, logits, ref)
    finally:
        handle.remove()


def test_merging_at_given_layers_only_and_flash_refuses_bias():
    model = llava("sdpa")
    config = adsc.CompressionConfig(method="tome", layers=(2, 4), budget=24, vision_tokens=N_IMG, options={"every_layer": False})
    handle = adsc.compress(model, config)
    try:
        assert handle.schedule.stage_layers == (2, 4)
        with torch.no_grad():
            model(input_ids=ROW, pixel_values=PIX)
        counts = handle.last_trace.vision_tokens(0)
        assert counts[2] >= N_IMG // 2 and counts[4] >= counts[2] // 2  # at most half per merge
    finally:
        handle.remove()
    from adsc.engine.state import stage_mask

    with pytest.raises(ValueError, match="proportional_attention"):
        stage_mask(torch.ones(1, 4, dtype=torch.bool), 4, "flash_attention_2", torch.float32, torch.zeros(1, 4))
