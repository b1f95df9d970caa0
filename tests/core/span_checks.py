"""Checks the family tests share: what a compressed forward kept on each span's own grid."""

from __future__ import annotations

import torch

import adsc
from adsc.methods.adsc import UniformSelector


def compressed_trace(model, config: adsc.CompressionConfig, inputs: dict):
    handle = adsc.compress(model, config)
    try:
        with torch.no_grad():
            model(**inputs)
        return handle.last_trace
    finally:
        handle.remove()


def assert_uniform_grid_per_span(trace, config: adsc.CompressionConfig, num_layers: int) -> None:
    """Every span keeps ADSC's uniform selection (the config's pattern) of its own grid at every stage (nothing
    is shared across spans), and its ``extra`` tokens are kept at every layer like text."""
    rule = UniformSelector(config.drop_ratio, len(config.layers), config.pattern, config.phase, config.seed)
    for b, spans in enumerate(trace.seq.spans):
        for stage, layer in enumerate(config.layers):
            kept = set(trace.vision_positions(layer, b).tolist())
            for span in spans:
                positions = span.token_positions().tolist()
                expected = sorted(positions[k] for k in rule.kept_in_span(span, stage).tolist())  # per frame for videos
                assert sorted(kept & set(positions)) == expected, (b, span.grid, stage)
        extra = {p for span in spans for p in span.extra}
        for layer in range(num_layers):
            assert extra <= set(trace.positions(layer, b).tolist()), (b, layer)


def language_model_embeds(model, inputs: dict) -> torch.Tensor:
    """The hidden states the unpatched model's first decoder layer receives: the token embeddings with
    the image features scattered in (none of the families here scales or mixes them before layer 0)."""
    from adsc.adapters import adapter_for

    captured = {}

    def grab(module, args, kwargs):
        captured["embeds"] = args[0] if args else kwargs["hidden_states"]

    hook = adapter_for(model).decoder_layers(model)[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        hook.remove()
    return captured["embeds"]


def assert_tokens_are_raster_blocks(blocks: torch.Tensor, span, scale: int) -> None:
    """``blocks`` (tokens, scale * scale, 2): the (row, col) patch coordinates a pixel shuffle folded
    into each token; token k must hold the scale x scale block at scale * VisionSpan.cell(k)."""
    assert span.length == len(blocks)
    for k, patches in enumerate(blocks):
        _, r, c = span.cell(k)
        expected = {(scale * r + i, scale * c + j) for i in range(scale) for j in range(scale)}
        assert {tuple(p) for p in patches.long().tolist()} == expected, k


def patch_coordinates(rows: int, cols: int) -> torch.Tensor:
    """(rows, cols, 2) float map of each patch's (row, col), to push through a model's token folding."""
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack([r, c], -1).float()
