"""General vision spans: grid tokens at any positions, tokens of the image run that are not on the
grid (newlines), and the attention pattern an adapter declares."""

import pytest
import torch

import adsc
import adsc.adapters as adapters
from adsc.adapters import LlavaAdapter, VisionSpan
from adsc.methods.adsc import UniformSelector
from adsc.tiny import IMAGE_TOKEN, tiny_llava

from .helpers import llava_ids


class NewlineLlava(LlavaAdapter):
    """Reads each 6 x 6 image as a 6 x 5 grid whose last column is an image-newline token (as
    LLaVA-NeXT's newline after each row): grid tokens at gapped positions plus extra tokens."""

    def vision_spans(self, model, input_ids, inputs):
        spans = []
        for sample in super().vision_spans(model, input_ids, inputs):
            spans.append([
                VisionSpan(s.start, (6, 5), positions=tuple(s.start + r * 6 + c for r in range(6) for c in range(5)),
                           extra=tuple(s.start + r * 6 + 5 for r in range(6)))
                for s in sample
            ])
        return spans


def test_span_geometry():
    span = VisionSpan(10, (2, 3), frames=2)
    assert span.length == 12 and span.cell(7) == (1, 0, 1)
    assert torch.equal(span.token_positions(), torch.arange(10, 22))
    with pytest.raises(ValueError, match="needs 6 positions"):
        VisionSpan(0, (2, 3), positions=(1, 2))


def test_gapped_grid_tokens_are_selected_on_their_grid_and_newlines_always_stay(monkeypatch):
    monkeypatch.setattr(adapters, "ADAPTERS", (NewlineLlava(),))
    model = tiny_llava(layers=4)
    config = adsc.CompressionConfig(layers=(2,), drop_ratio=0.5, vision_tokens=30)
    handle = adsc.compress(model, config)
    try:
        ids = llava_ids([1, 5])
        with torch.no_grad():
            model(input_ids=torch.tensor([ids]), pixel_values=torch.randn(1, 3, 48, 48))
        trace = handle.last_trace
        start = ids.index(IMAGE_TOKEN)
        grid = [start + r * 6 + c for r in range(6) for c in range(5)]
        newlines = {start + r * 6 + 5 for r in range(6)}
        kept = UniformSelector(0.5, 1, "grid2d", 0.5).kept_in_grid((6, 5), 0).tolist()
        assert trace.vision_tokens(0) == [30, 30, 15, 15]  # newlines are not vision tokens
        assert trace.vision_positions(2, 0).tolist() == sorted(grid[k] for k in kept)
        assert newlines <= set(trace.positions(3, 0).tolist())  # kept like text at every layer
    finally:
        handle.remove()


def test_a_layer_pattern_without_a_stage_mask_is_refused_at_compress(monkeypatch):
    class Sliding(LlavaAdapter):
        def mask_pattern(self, model, layer_index):
            return "sliding_window" if layer_index == 3 else "causal"

    monkeypatch.setattr(adapters, "ADAPTERS", (Sliding(),))
    model = tiny_llava(layers=4)
    with pytest.raises(ValueError, match="attention pattern 'sliding_window' \\(decoder layer 3\\)"):
        adsc.compress(model, adsc.CompressionConfig(layers=(2,), drop_ratio=0.5))
    adsc.compress(model, adsc.CompressionConfig(layers=(), drop_ratio=0.5)).remove()  # nothing compressed: fine
