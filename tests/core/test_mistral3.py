"""Mistral 3 facts the oracle suite (tests/core/families/mistral3.py) does not check: the grid against
the model's own patch merger and features, break / end tokens as extra, generate's inputs, refusals."""

from types import SimpleNamespace

import pytest
import torch

import adsc
from adsc.adapters import adapter_for, adapter_for_config
from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_mistral3 import tiny_mistral3

from .families.mistral3 import BREAK, END, mistral3_sample, samples
from .family_checks import model_fixture
from .span_checks import assert_uniform_grid_per_span, compressed_trace, language_model_embeds

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


model = model_fixture(tiny_mistral3)


def test_grid_cell_k_is_the_2x2_patch_block_the_merger_folds_into_token_k(model):
    """The model's patch merger on patch coordinates (channel 0 = row, 1 = column): token k merges
    rows 2r, 2r+1 and columns 2c, 2c+1 of the patch grid, (r, c) = VisionSpan.cell(k)."""
    merger = model.model.multi_modal_projector.patch_merger
    height, width = 48, 64  # 6 x 8 patches -> 3 x 4 tokens
    rows, cols = torch.meshgrid(torch.arange(6), torch.arange(8), indexing="ij")
    features = torch.zeros(48, merger.merging_layer.in_features // 4)
    features[:, 0], features[:, 1] = rows.flatten(), cols.flatten()
    seen = {}
    hook = merger.merging_layer.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    try:
        merger(features, torch.tensor([[height, width]]))
    finally:
        hook.remove()
    merged = seen["x"].view(-1, features.shape[1], 4)  # unfold: channel-major, then the 2 x 2 block
    sample = mistral3_sample([1], [(height, width)], 0)
    span = adapter_for(model).vision_spans(model, sample["input_ids"], sample)[0][0]
    assert span.grid == (3, 4) and span.length == len(merged)
    for k, token in enumerate(merged):
        _, r, c = span.cell(k)
        assert set(zip(token[0].long().tolist(), token[1].long().tolist())) == {(2 * r + i, 2 * c + j) for i in (0, 1)
                                                                               for j in (0, 1)}


def test_spans_hold_the_models_features_and_the_break_tokens_are_extra(model):
    sample = samples()[0]
    spans = adapter_for(model).vision_spans(model, sample["input_ids"], sample)[0]
    ids = sample["input_ids"][0]
    assert [s.grid for s in spans] == [(3, 4), (2, 2)]
    assert [ids[list(s.extra)].tolist() for s in spans] == [[BREAK, BREAK, END], [BREAK, END]]
    with torch.no_grad():
        features = model.model.get_image_features(sample["pixel_values"], sample["image_sizes"], return_dict=True)
    embeds = language_model_embeds(model, sample)
    for span, image in zip(spans, features.pooler_output):
        assert torch.equal(embeds[0, span.token_positions()], image)


def test_kept_grid_of_every_image_is_the_uniform_one_and_breaks_are_never_dropped(model):
    for sample in samples()[:2]:
        trace = compressed_trace(model, CFG, sample)
        assert_uniform_grid_per_span(trace, CFG, num_layers=6)
        tokens = int((sample["input_ids"] == IMAGE_TOKEN).sum())
        assert trace.vision_tokens(0)[:2] == [tokens] * 2  # only grid tokens count, never a break / end token


def test_generate_inputs_give_the_same_spans(model):
    """generate hands the core mm_encoder_outputs instead of image_sizes: rows are read off input_ids."""
    sample = samples()[0]
    adapter = adapter_for(model)
    with torch.no_grad():
        encoded = model.model.get_image_features(sample["pixel_values"], sample["image_sizes"], return_dict=True)
    from_sizes = adapter.vision_spans(model, sample["input_ids"], sample)
    assert adapter.vision_spans(model, sample["input_ids"], {"mm_encoder_outputs": {"image": encoded}}) == from_sizes


def test_family_facts(model):
    adapter = adapter_for(model)
    assert adapter.name == "mistral3" and adapter.reference_vision_tokens(model) == 16  # a 64 px image: 4 x 4
    for part in ("llm", "projector", "vision"):
        assert isinstance(model.get_submodule(adapter.training_parts[part]), torch.nn.Module)


def test_reference_tokens_from_a_config_alone_are_mistral_small_3_1s_largest_image():
    from transformers import Mistral3Config

    config = Mistral3Config()  # Pixtral at 1540 px, patch 14, 2 x 2 merge
    assert adapter_for_config(config).reference_vision_tokens(SimpleNamespace(config=config)) == 55 * 55


def test_refusals_name_the_fix(model):
    adapter = adapter_for(model)
    sample = samples()[1]  # one 64 x 48 image: 4 rows of 3
    with pytest.raises(ValueError, match="pass the processor's image_sizes"):
        adapter.vision_spans(model, sample["input_ids"], {})
    with pytest.raises(ValueError, match="image_sizes give a 3x4 grid but its .IMG. tokens form 4 rows of 3"):
        adapter.vision_spans(model, sample["input_ids"], {"image_sizes": torch.tensor([[48, 64]])})
    with pytest.raises(ValueError, match="hold 12 image tokens but the 1 image.s. of image_sizes describe 16"):
        adapter.vision_spans(model, sample["input_ids"], {"image_sizes": torch.tensor([[64, 64]])})
    two_between = torch.tensor([[1] + [IMAGE_TOKEN] * 6 + [BREAK, BREAK] + [IMAGE_TOKEN] * 6 + [END]])
    with pytest.raises(ValueError, match="each followed by one .IMG_BREAK. / .IMG_END. token"):
        adapter.vision_spans(model, two_between, sample)


def test_ministral3_language_model_is_refused_where_pruning_reaches():
    """Ministral 3 scales queries by their position ids inside attention; stage layers get none."""
    model = tiny_mistral3(layers=4, text_type="ministral3")
    with pytest.raises(ValueError, match="position-scaled queries .* .decoder layer 2"):
        adsc.compress(model, adsc.CompressionConfig(layers=(2,), drop_ratio=0.5))
    adsc.compress(model, adsc.CompressionConfig(layers=(), drop_ratio=0.5)).remove()  # nothing pruned: allowed
