"""LLaVA-NeXT (anyres) through the engine's oracle tests: base grid + unpadded tile map + newline tokens."""

import pytest
import torch

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.methods.adsc import UniformSelector
from adsc.tiny import IMAGE_TOKEN, tiny_llava_next

from .helpers import pad_batch
from .test_equivalence import masked_reference, run
from .test_generate import greedy_without_cache

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)
# (height, width) -> tile map (rows, cols) in the tiny model (tower 48 px / patch 8 = 6 x 6 base grid,
# pinpoints 48x96 / 96x48 / 96x96): a square image gets 2 x 2 tiles = 12 x 12; a wide one is cropped in rows
SIZES = {(96, 96): (12, 12), (60, 90): (8, 12), (90, 60): (12, 8), (48, 48): (6, 6)}
BASE = 36


def image_tokens(size):
    rows, cols = SIZES[size]
    return BASE + rows * (cols + 1)  # each map row ends in one image-newline token


def sample(prefix, sizes, between=(7, 8), suffix=(9, 10)):
    ids = list(prefix)
    for i, size in enumerate(sizes):
        ids += [IMAGE_TOKEN] * image_tokens(size) + (list(between) if i + 1 < len(sizes) else [])
    return ids + list(suffix)


def anyres_pixels(sizes, seed=0):
    """Crops per image in batch order: the base image + the tiles of its best pinpoint (flat, 4-D)."""
    tiles = sum(1 + (2 if size == (48, 48) else 4) for size in sizes)
    return torch.randn(tiles, 3, 48, 48, generator=torch.Generator().manual_seed(seed))


def batch(rows_sizes, side="left"):
    ids, mask, pos = pad_batch([sample(prefix, sizes) for prefix, sizes in rows_sizes], side)
    sizes = [s for _, ss in rows_sizes for s in ss]
    return dict(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=anyres_pixels(sizes),
                image_sizes=torch.tensor(sizes))


TWO_SAMPLES = [([1, 5, 6], [(96, 96), (60, 90)]), ([1, 9], [(90, 60)])]


@pytest.fixture(scope="module")
def model():
    return tiny_llava_next(layers=6, attn="eager")


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


@pytest.mark.parametrize("config, tolerance", [
    (adsc.CompressionConfig(layers=(), drop_ratio=0.5), 0.0),  # nothing to compress: the model runs unpatched
    (CFG.replace(drop_ratio=0.0), 1e-6),  # stages that keep everything: the stage mask's own rounding, as for LLaVA-1.5
])
def test_no_drop_reproduces_unpatched_model(model, config, tolerance):
    inputs = batch(TWO_SAMPLES)
    ref = run(model, **inputs)
    handle = adsc.compress(model, config)
    try:
        out = run(model, **inputs)
    finally:
        handle.remove()
    valid = inputs["attention_mask"].bool()
    assert (out - ref)[valid].abs().max() <= tolerance


def newline_positions(spans, b):
    return [p for span in spans[b] for p in span.extra]


def test_dropping_equals_masking_with_original_positions(model):
    inputs = batch(TWO_SAMPLES)
    handle = adsc.compress(model, CFG)
    try:
        out = run(model, **inputs)
        trace = handle.last_trace
    finally:
        handle.remove()
    ref = masked_reference(model, trace, inputs)
    ids, mask = inputs["input_ids"], inputs["attention_mask"].bool()
    for b in range(2):
        # text, newline tokens (kept like text) and the last stage's surviving grid tokens all match
        compare = ((ids[b] != IMAGE_TOKEN) & mask[b]).nonzero().flatten().tolist()
        compare += newline_positions(trace.seq.spans, b) + trace.vision_positions(5, b).tolist()
        assert (out[b, compare] - ref[b, compare]).abs().max() <= 1e-5, f"sample {b}"


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


def test_cached_generate_equals_uncached_and_kv_lengths_follow_the_schedule(model):
    inputs = batch(TWO_SAMPLES)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    images = dict(pixel_values=inputs["pixel_values"], image_sizes=inputs["image_sizes"])
    new = 5
    handle = adsc.compress(model, CFG)
    try:
        with torch.no_grad():
            cached = model.generate(input_ids=ids, attention_mask=mask, **images, max_new_tokens=new, do_sample=False)
        trace = handle.last_trace
        assert torch.equal(cached, greedy_without_cache(model, ids, mask, new, **images))
    finally:
        handle.remove()
    for b in range(2):
        others = int(((ids[b] != IMAGE_TOKEN) & mask[b].bool()).sum()) + len(newline_positions(trace.seq.spans, b))
        assert trace.kv_lengths(b) == [v + others + new - 1 for v in trace.vision_tokens(b)]


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_samples_alone(model, side):
    """Images are matched to samples in batch order (as the model's masked_scatter fills them)."""
    inputs = batch(TWO_SAMPLES, side)
    handle = adsc.compress(model, CFG)
    try:
        batched = run(model, **inputs)
        crops = 0
        for b, (prefix, sizes) in enumerate(TWO_SAMPLES):
            alone = batch([(prefix, sizes)])
            count = alone["pixel_values"].shape[0]
            alone["pixel_values"] = inputs["pixel_values"][crops : crops + count]
            crops += count
            where = inputs["attention_mask"][b].bool()
            assert (batched[b, where] - run(model, **alone)[0]).abs().max() <= 1e-5, f"sample {b}"
    finally:
        handle.remove()


def test_remove_restores_bit_identical_outputs(model):
    inputs = batch(TWO_SAMPLES[1:])
    before = run(model, **inputs)
    handle = adsc.compress(model, CFG)
    compressed = run(model, **inputs)
    handle.remove()
    after = run(model, **inputs)
    assert not torch.equal(before, compressed)
    assert torch.equal(before, after)


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
