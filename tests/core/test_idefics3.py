"""SmolVLM / Idefics3 facts the oracle suite (tests/core/families/idefics3.py) does not check: the grid
against the connector's pixel shuffle, one span per sub-image and global image, refusals."""

from types import SimpleNamespace

import pytest
import torch

from adsc.adapters import adapter_for, adapter_for_config
from adsc.tiny import IMAGE_TOKEN
from adsc.tiny_idefics3 import tiny_idefics3

from .families.idefics3 import CASES, FAKE, GLOBAL, samples
from .span_checks import (
    assert_tokens_are_raster_blocks,
    assert_uniform_grid_per_span,
    compressed_trace,
    language_model_embeds,
    patch_coordinates,
)


@pytest.fixture(scope="module", params=["smolvlm", "idefics3"])
def model(request):
    return tiny_idefics3(request.param, layers=6, attn="eager")


def test_grid_cell_k_is_the_2x2_patch_block_the_connector_folds_into_token_k(model):
    coords = patch_coordinates(8, 8).view(1, 64, 2)  # the tower's patch sequence of one 32 px (sub-)image
    shuffled = model.model.connector.pixel_shuffle(coords, 2).view(-1, 4, 2)
    span = adapter_for(model).vision_spans(model, samples()[1]["input_ids"], {})[0][0]
    assert span.grid == (4, 4)
    assert_tokens_are_raster_blocks(shuffled, span, 2)


def test_every_sub_image_and_global_image_is_a_span_holding_its_features(model):
    sample = samples()[0]  # a 1 x 2 split image (2 sub-images + global), then an unsplit one (global only)
    spans = adapter_for(model).vision_spans(model, sample["input_ids"], sample)[0]
    assert len(spans) == 4 and {s.grid for s in spans} == {(4, 4)} and all(not s.extra for s in spans)
    ids = sample["input_ids"][0]
    assert ids[spans[2].start - 1] == GLOBAL and ids[spans[2].start - 2] == FAKE  # text before the global image's run
    with torch.no_grad():
        encoded = model.model.get_image_features(sample["pixel_values"], return_dict=True).pooler_output
    # SmolVLM gives one (images * tokens, d) tensor per sample, Idefics3 one (images, tokens, d) tensor
    features = torch.cat([f.reshape(-1, f.shape[-1]) for f in encoded]).split(16)
    embeds = language_model_embeds(model, sample)
    for image, span in enumerate(spans):  # the forward encodes the images batched: equal up to float rounding
        torch.testing.assert_close(embeds[0, span.token_positions()], features[image], rtol=0, atol=1e-5)


def test_kept_grid_of_every_sub_image_is_the_uniform_one(model):
    config = CASES[0].config
    trace = compressed_trace(model, config, samples()[0])
    assert_uniform_grid_per_span(trace, config, num_layers=6)
    assert trace.vision_tokens(0)[:2] == [64, 64]  # 4 sub-/global images of 16; fake and row/col tokens not counted


def test_family_facts(model):
    adapter = adapter_for(model)
    assert adapter.name == "idefics3" and adapter.reference_vision_tokens(model) == 16
    assert adapter.decoder_layers(model) is model.model.text_model.layers
    for part in ("llm", "projector", "vision"):
        assert isinstance(model.get_submodule(adapter.training_parts[part]), torch.nn.Module)


def test_reference_tokens_from_configs_alone_are_one_sub_image():
    from transformers import Idefics3Config, SmolVLMConfig

    smol = SmolVLMConfig(vision_config=dict(image_size=512, patch_size=16), scale_factor=4)  # SmolVLM-256M / 500M
    idefics = Idefics3Config(vision_config=dict(image_size=364, patch_size=14), scale_factor=2)  # Idefics3-8B
    counts = [adapter_for_config(c).reference_vision_tokens(SimpleNamespace(config=c)) for c in (smol, idefics)]
    assert counts == [64, 169]
    odd = SmolVLMConfig()  # 224 / 32 = 7 patches do not halve
    with pytest.raises(ValueError, match="do not divide by scale_factor 2"):
        adapter_for_config(odd).reference_vision_tokens(SimpleNamespace(config=odd))


def test_a_run_that_is_not_whole_images_is_refused_with_the_fix(model):
    with pytest.raises(ValueError, match="not a multiple of 16 .*model's own processor"):
        adapter_for(model).vision_spans(model, torch.tensor([[1, FAKE] + [IMAGE_TOKEN] * 20 + [FAKE]]), {})
