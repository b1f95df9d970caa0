"""LLaVA-NeXT (anyres) facts beyond the shared oracle tests: base grid + unpadded tile map + newline tokens."""

import pytest
import torch

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.methods.adsc import UniformSelector
from adsc.tiny import IMAGE_TOKEN, tiny_llava_next

from .family_checks import model_fixture
from .helpers import anyres_pixels, image_tokens, next_sample, pad_batch
from .test_families import run

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)
def batch(rows_sizes, side="left"):
    ids, mask, pos = pad_batch([next_sample(prefix, sizes) for prefix, sizes in rows_sizes], side)
    sizes = [s for _, ss in rows_sizes for s in ss]
    return dict(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=anyres_pixels(sizes),
                image_sizes=torch.tensor(sizes))


TWO_SAMPLES = [([1, 5, 6], [(96, 96), (60, 90)]), ([1, 9], [(90, 60)])]


model = model_fixture(tiny_llava_next)


def test_adapter_layout_matches_the_models_packed_features(model):
    """Token counts per image from the model's own get_image_features, and the newline tokens are
    exactly where the model wrote its image_newline vector."""
    inputs = batch(TWO_SAMPLES)
    with torch.no_grad():
        packed = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"], return_dict=True).pooler_output
        embeds = torch.zeros(*inputs["input_ids"].shape, model.config.text_config.hidden_size)
        embeds[inputs["input_ids"] == IMAGE_TOKEN] = torch.cat(packed)
    assert [len(f) for f in packed] == [image_tokens(s) for s in [(96, 96), (60, 90), (90, 60)]]
    spans = adapter_for(model).vision_spans(model, inputs["input_ids"], inputs)
    assert [[s.grid for s in sample] for sample in spans] == [[(6, 6), (12, 12), (6, 6), (8, 12)], [(6, 6), (12, 8)]]
    for b, sample_spans in enumerate(spans):
        for span in sample_spans:
            assert bool((embeds[b, list(span.extra)] == model.model.image_newline).all()) or not span.extra
            grid_rows = embeds[b, span.token_positions()]
            assert not bool((grid_rows == model.model.image_newline).all(-1).any())
        assert [len(s.extra) for s in sample_spans] == ([0, 12, 0, 8] if b == 0 else [0, 12])


def test_generate_inputs_give_the_same_spans(model):
    """generate hands the core mm_encoder_outputs instead of image_sizes: the layout read off the
    packed features is the one image_sizes give."""
    inputs = batch(TWO_SAMPLES)
    adapter = adapter_for(model)
    with torch.no_grad():
        encoded = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"], return_dict=True)
    from_sizes = adapter.vision_spans(model, inputs["input_ids"], inputs)
    from_features = adapter.vision_spans(model, inputs["input_ids"], {"mm_encoder_outputs": {"image": encoded}})
    assert from_sizes == from_features


def newline_positions(spans, b):
    return [p for span in spans[b] for p in span.extra]


def test_kept_grids_of_base_image_and_tiles_are_the_documented_ones(model):
    """Each base grid and each tile map is selected on its own 2-D grid (ADSC's uniform grid2d
    rule); every newline token is kept at every layer and never counted as a vision token."""
    inputs = batch(TWO_SAMPLES)
    handle = adsc.compress(model, CFG)
    try:
        run(model, **inputs)
        trace = handle.last_trace
    finally:
        handle.remove()
    rule = UniformSelector(0.5, 2, "grid2d", 0.5)
    grid_tokens = [36 + 144 + 36 + 96, 36 + 96]
    for b, spans in enumerate(trace.seq.spans):
        for stage, layer in enumerate((2, 4)):
            kept = set(trace.vision_positions(layer, b).tolist())
            for span in spans:
                positions = span.token_positions().tolist()
                expected = sorted(positions[k] for k in rule.kept_in_grid(span.grid, stage).tolist())
                assert sorted(kept & set(positions)) == expected, (b, span.grid, stage)
        for layer in range(6):
            assert set(newline_positions(trace.seq.spans, b)) <= set(trace.positions(layer, b).tolist())
        v = grid_tokens[b]
        assert trace.vision_tokens(b) == [v] * 2 + [v // 2] * 2 + [v // 4] * 2


def test_family_facts(model):
    adapter = adapter_for(model)
    assert adapter.name == "llava_next"
    assert adapter.reference_vision_tokens(model) == 36 + 12 * 12  # an image filling the largest pinpoint, no newlines
    assert (adapter.train_template, adapter.pad_to_square) == ("chat_template", False)
    for part in ("llm", "projector", "vision"):
        assert isinstance(model.get_submodule(adapter.training_parts[part]), torch.nn.Module)


def test_reference_tokens_from_a_config_alone_are_llava_1_6s_2880():
    """LLaVA-1.6's defaults (336 px tower, patch 14, pinpoints up to 672 x 672): 576 + 48 x 48, newlines not counted."""
    from types import SimpleNamespace

    from transformers import LlavaNextConfig

    config = LlavaNextConfig()  # evaluation and training ask the adapter before any model is loaded
    assert adapter_for_config(config).reference_vision_tokens(SimpleNamespace(config=config)) == 2880


def test_missing_or_mismatched_image_sizes_are_refused_with_the_fix(model):
    inputs = batch(TWO_SAMPLES[1:])
    handle = adsc.compress(model, CFG)
    try:
        with pytest.raises(ValueError, match="pass the processor's image_sizes"):
            run(model, input_ids=inputs["input_ids"])
        with pytest.raises(ValueError, match="image tokens but the 1 image"):
            run(model, **{**inputs, "image_sizes": torch.tensor([[96, 96]])})
    finally:
        handle.remove()


def test_a_mistral_sliding_window_is_kept_and_windows_on_some_layers_only_are_refused():
    """LLaVA-1.6-Mistral with ``sliding_window``: every layer keeps the window in original positions
    (the oracle case tests/core/families/llava_next_mistral.py checks it against the masked model);
    a decoder whose ``layer_types`` window some layers only has no stage mask here and is refused."""
    from adsc.adapters.base import AttentionPattern

    windowed = tiny_llava_next(layers=6, sliding_window=24)
    assert [adapter_for(windowed).mask_pattern(windowed, i) for i in range(6)] == [AttentionPattern(window=24)] * 6
    mixed = tiny_llava_next(layers=6)
    mixed.config.text_config.layer_types = ["full_attention"] * 2 + ["sliding_attention"] + ["full_attention"] * 3
    mixed.config.text_config.sliding_window = 24
    with pytest.raises(ValueError, match="attention pattern 'sliding_attention' .decoder layer 2"):
        adsc.compress(mixed, CFG)
