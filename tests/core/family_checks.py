"""Checks the family-specific tests share (test_<family>.py): their tiny model fixture, q/k against
the layer's own attention, and a compressed forward under any method."""

import pytest
import torch

import adsc
from adsc.adapters import adapter_for

# Halves the vision tokens at layers 2 and 4, the stages the 6-layer fixture model has room for.
CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


def model_fixture(build):
    """The module-scoped ``model`` fixture of a test_<family>.py: ``build``'s tiny model, 6 layers
    (room for stages at 2 and 4), eager attention (its weights are what the q/k checks compare with)."""
    @pytest.fixture(scope="module")
    def model():
        return build(layers=6, attn="eager")

    return model


def assert_queries_and_keys_reproduce_attention(model, layer, hidden, position_embeddings):
    """softmax(q k^T * scaling) from the adapter == the eager attention weights ``layer`` returns
    (causal), for ``hidden`` (1, T, d) rotated by ``position_embeddings``."""
    adapter, length = adapter_for(model), hidden.shape[1]
    causal = torch.full((length, length), float("-inf")).triu(1)[None, None]
    with torch.no_grad():
        _, weights = layer.self_attn(layer.input_layernorm(hidden), position_embeddings, causal)
        q, k = adapter.queries(layer, hidden, position_embeddings), adapter.keys(layer, hidden, position_embeddings)
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    mine = (q @ k.transpose(-1, -2) * adapter.attention_scaling(layer) + causal).softmax(-1)
    torch.testing.assert_close(mine, weights.float(), atol=1e-5, rtol=1e-5)


def compressed_vision_tokens(model, sample, config):
    """(logits, vision tokens per layer of sample 0) of one forward compressed by ``config``."""
    handle = adsc.compress(model, config)
    try:
        with torch.no_grad():
            out = model(**sample).logits
        return out, handle.last_trace.vision_tokens(0)
    finally:
        handle.remove()


def assert_every_span_keeps_its_uniform_grid(model, sample, config):
    """Each image / frame keeps, from each stage on, the tokens the uniform selector documents for its grid."""
    handle = adsc.compress(model, config)
    try:
        with torch.no_grad():
            model(**sample)
        trace, selector = handle.last_trace, handle.selector
    finally:
        handle.remove()
    assert trace.seq.spans[0]
    for stage, layer in enumerate(config.layers):
        kept = set(trace.vision_positions(layer, 0).tolist())
        for span in trace.seq.spans[0]:
            grid = span.token_positions()
            assert sorted(kept & set(grid.tolist())) == grid[selector.kept_in_grid(span.grid, stage)].tolist()
