"""InternVL facts the oracle suite (tests/core/families/internvl.py) does not check: the tile layout
against the model's own features, one grid per tile, and the refusals."""

from types import SimpleNamespace

import pytest
import torch

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_internvl import tiny_internvl

from .families.internvl import internvl_ids, samples
from .family_checks import CFG, model_fixture
from .span_checks import (
    assert_tokens_are_raster_blocks,
    assert_uniform_grid_per_span,
    compressed_trace,
    language_model_embeds,
    patch_coordinates,
)

model = model_fixture(tiny_internvl)


def test_grid_cell_k_is_the_2x2_patch_block_the_pixel_shuffle_puts_at_token_k(model):
    """The model's pixel_shuffle on a map of patch coordinates: token k of a tile holds the patches
    of rows 2r, 2r+1 and columns 2c, 2c+1 where (r, c) = VisionSpan.cell(k), so the raster order
    the adapter declares is the spatial order of the features."""
    coords = patch_coordinates(8, 8)[None]  # a 32 px tile / patch 4, laid out as the vision features are
    shuffled = model.model.pixel_shuffle(coords, scale_factor=0.5).reshape(-1, 4, 2)
    span = adapter_for(model).vision_spans(model, torch.tensor([internvl_ids([1], [1])]), {})[0][0]
    assert span.grid == (4, 4)
    assert_tokens_are_raster_blocks(shuffled, span, 2)


def test_each_tile_and_the_thumbnail_is_a_span_holding_that_tiles_features(model):
    sample = samples()[0]  # 3 tiles (2 crops + thumbnail), then a one-tile image
    spans = adapter_for(model).vision_spans(model, sample["input_ids"], sample)[0]
    assert [(s.start, s.grid) for s in spans] == [(4, (4, 4)), (20, (4, 4)), (36, (4, 4)), (56, (4, 4))]
    with torch.no_grad():
        features = model.model.get_image_features(sample["pixel_values"], return_dict=True).pooler_output
    embeds = language_model_embeds(model, sample)
    for tile, span in enumerate(spans):
        assert torch.equal(embeds[0, span.token_positions()], features[tile])
    ids = sample["input_ids"][0]
    assert (ids[[s.start - 1 for s in spans[::3]]] == 28).all()  # <img> is text, just before each image's run


def test_kept_grid_of_every_tile_and_frame_is_the_uniform_one(model):
    for sample in samples()[:2]:
        trace = compressed_trace(model, CFG, sample)
        assert_uniform_grid_per_span(trace, CFG, num_layers=6)
        tokens = int((sample["input_ids"] == IMAGE_TOKEN).sum())
        assert trace.vision_tokens(0) == [tokens] * 2 + [tokens // 2] * 2 + [tokens // 4] * 2


def test_family_facts(model):
    adapter = adapter_for(model)
    assert adapter.name == "internvl" and adapter.reference_vision_tokens(model) == 16
    for part in ("llm", "projector", "vision"):
        assert isinstance(model.get_submodule(adapter.training_parts[part]), torch.nn.Module)


def test_reference_tokens_from_a_config_alone_are_one_448px_tile():
    from transformers import InternVLConfig

    config = InternVLConfig()  # InternVL3: 448 px tiles, patch 14, downsample 0.5
    assert adapter_for_config(config).reference_vision_tokens(SimpleNamespace(config=config)) == 256


def test_refusals_name_the_fix(model):
    adapter = adapter_for(model)
    with pytest.raises(ValueError, match="not a multiple of 16 .*model's own processor"):
        adapter.vision_spans(model, torch.tensor([[1] + [IMAGE_TOKEN] * 20 + [2]]), {})
    model.config.vision_feature_select_strategy = "full"
    try:
        with pytest.raises(ValueError, match="vision_feature_select_strategy='default'"):
            adapter.reference_vision_tokens(model)
    finally:
        model.config.vision_feature_select_strategy = "default"


def test_sliding_window_language_model_is_refused_at_compress():
    model = tiny_internvl(layers=4)
    model.config.text_config.layer_types = ["full_attention", "full_attention", "sliding_attention", "sliding_attention"]
    with pytest.raises(ValueError, match="attention pattern 'sliding_attention' .decoder layer 2"):
        adsc.compress(model, adsc.CompressionConfig(layers=(2,), drop_ratio=0.5))
    handle = adsc.compress(model, adsc.CompressionConfig(layers=(), drop_ratio=0.5))  # nothing pruned: allowed
    handle.remove()
