"""FastV and PyramidDrop keep exactly what a brute-force eager-attention reference keeps."""

import pytest
import torch

import adsc
from adsc.tiny import IMAGE_TOKEN

from .helpers import N_IMG, assert_matches_reference, keep_top_reference, llava, llava_row, pixels, reference_forward

ROW = torch.tensor([llava_row()])
PIX = pixels(1)


def _config(method, layers, budget, **options):
    return adsc.CompressionConfig(method=method, layers=layers, budget=budget, vision_tokens=N_IMG, options=options)


@pytest.mark.parametrize("score", ["last", "mean"])
@pytest.mark.parametrize("k_layer", [2, 3])
def test_fastv_matches_output_attentions(score, k_layer):
    eager = llava("eager")
    with torch.no_grad():
        attn = eager(input_ids=ROW, pixel_values=PIX, output_attentions=True).attentions[k_layer - 1][0].mean(0)
        # "last": the last token's row; "mean": mean over every query row (causal zeros included)
        row = attn[-1] if score == "last" else attn.mean(0)
        vision = (ROW[0] == IMAGE_TOKEN).nonzero().flatten()
        for attn_impl in ("eager", "sdpa"):
            model = llava(attn_impl)
            handle = adsc.compress(model, _config("fastv", (k_layer,), 24, score=score))
            try:
                logits = model(input_ids=ROW, pixel_values=PIX).logits[0, -1]
                k = handle.schedule.keep_counts[0]
                expected = vision[row[vision].topk(k).indices].sort().values
                assert torch.equal(handle.last_trace.vision_positions(k_layer, 0), expected)
                assert handle.last_trace.vision_tokens(0) == [N_IMG] * k_layer + [k] * (6 - k_layer)
                if score == "last":  # the same drop in a layer-by-layer reference gives the same logits

                    def reduce(l, h, idx, size, attn_l):
                        if l == k_layer:
                            return keep_top_reference(h, idx, size, attn_l[l - 1][0].mean(0)[-1], ROW[0] == IMAGE_TOKEN, k)

                    ref, _ = reference_forward(eager, ROW, PIX, reduce)
                    torch.testing.assert_close(logits, ref, atol=1e-4, rtol=1e-4)
            finally:
                handle.remove()


@pytest.mark.parametrize("positions", ["renumber", "keep"])
@pytest.mark.parametrize("attn_impl", ["eager", "sdpa"])
def test_pyramiddrop_matches_eager_reference(positions, attn_impl):
    layers = (2, 3, 5)
    model = llava(attn_impl)
    handle = adsc.compress(model, _config("pyramiddrop", layers, 16, positions=positions))
    counts = handle.schedule.keep_counts
    assert counts == tuple(int(N_IMG * (1 - handle.schedule.ratio) ** (s + 1) + 1e-9) for s in range(3))
    try:
        with torch.no_grad():
            logits = model(input_ids=ROW, pixel_values=PIX).logits[0, -1]
            trace = handle.last_trace

            def reduce(l, h, idx, size, attn):
                if l in layers:  # the rank layer's own attention, last token's row, mean over heads
                    return keep_top_reference(h, idx, size, attn[l][0].mean(0)[-1], ROW[0] == IMAGE_TOKEN,
                                              counts[layers.index(l)])

            ref, seen = reference_forward(llava("eager"), ROW, PIX, reduce, renumber=positions == "renumber")
        assert_matches_reference(trace, seen, logits, ref)
    finally:
        handle.remove()


def test_renumbered_positions_differ_from_kept_ones():
    model = llava("eager")
    out = {}
    for positions in ("renumber", "keep"):
        handle = adsc.compress(model, _config("pyramiddrop", (2, 3, 5), 16, positions=positions))
        with torch.no_grad():
            out[positions] = model(input_ids=ROW, pixel_values=PIX).logits[0, -1]
        handle.remove()
    assert not torch.allclose(out["renumber"], out["keep"])
