"""Bad inputs to a compressed model end in a named error (issue 19), one test per defect."""

import pytest
import torch

import adsc
from adsc.tiny import tiny_llava, tiny_qwen2_vl

from .helpers import llava_ids, mm_types, qwen_sample

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


@pytest.fixture
def qwen():
    model = tiny_qwen2_vl(layers=6)
    handle = adsc.compress(model, CFG)
    ids, pixels = qwen_sample([(1, 4, 4)])
    ids = torch.tensor([ids])
    inputs = dict(input_ids=ids, pixel_values=pixels, image_grid_thw=torch.tensor([[1, 4, 4]]))
    yield model, handle, inputs
    handle.remove()


def test_qwen2_vl_static_cache_gives_the_dynamic_cache_message(qwen):
    model, _, inputs = qwen
    with pytest.raises(ValueError, match="adsc needs a DynamicCache.*StaticCache"):
        model.generate(**inputs, mm_token_type_ids=mm_types(inputs["input_ids"]), max_new_tokens=2,
                       cache_implementation="static")


def test_qwen2_vl_generate_without_mm_token_type_ids_names_them_not_image_grid_thw(qwen):
    model, _, inputs = qwen
    with pytest.raises(ValueError, match="pass the processor's mm_token_type_ids") as err:
        model.generate(**inputs, max_new_tokens=2)
    assert "pass image_grid_thw" not in str(err.value)


@pytest.mark.parametrize("grid", [[1, 4, 6], [1, 2, 4]])
def test_qwen2_vl_image_token_count_mismatch_is_named_in_forward_and_generate(qwen, grid):
    model, _, inputs = qwen
    bad = dict(inputs, image_grid_thw=torch.tensor([grid]))
    bad["pixel_values"] = torch.randn(grid[0] * grid[1] * grid[2], inputs["pixel_values"].shape[1])
    expected = grid[0] * grid[1] * grid[2] // 4
    message = f"input_ids hold 4 image tokens but image_grid_thw describes {expected}.*token-count mismatch"
    with pytest.raises(ValueError, match=message):
        model(**bad, mm_token_type_ids=mm_types(inputs["input_ids"]))
    with pytest.raises(ValueError, match=message):
        model.generate(**bad, mm_token_type_ids=mm_types(inputs["input_ids"]), max_new_tokens=2)


def test_remove_restores_qwen2_vl_get_rope_index(qwen):
    model, handle, _ = qwen
    assert "get_rope_index" in vars(model.model)
    handle.remove()
    assert "get_rope_index" not in vars(model.model)


def test_last_trace_after_a_forward_that_raised_is_none():
    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CFG)
    ids, pixels = torch.tensor([llava_ids([1])]), torch.randn(1, 3, 48, 48)
    try:
        with torch.no_grad():
            model(input_ids=ids, pixel_values=pixels)
            assert handle.last_trace is not None

            def fail(*_):
                raise RuntimeError("out of memory, say")

            hook = model.model.language_model.layers[3].register_forward_pre_hook(fail)
            with pytest.raises(RuntimeError, match="out of memory"):
                model(input_ids=ids, pixel_values=pixels)
            hook.remove()
            assert handle.last_trace is None  # not the trace of a run that never finished
            with pytest.raises(ValueError, match="not a multiple of 36"):  # raised in the core's pre-hook
                model(input_ids=ids[:, :-8], pixel_values=pixels)
            assert handle.last_trace is None
            model(input_ids=ids, pixel_values=pixels)  # and the handle still works afterwards
            assert handle.last_trace.vision_tokens(0) == [36, 36, 18, 18, 9, 9]
    finally:
        handle.remove()


def test_a_prompt_longer_than_max_position_embeddings_is_refused():
    model = tiny_llava(layers=6)
    model.config.text_config.max_position_embeddings = 40
    handle = adsc.compress(model, CFG)
    try:
        with pytest.raises(ValueError, match=r"prompt of 42 tokens is longer than this model's max_position_embeddings \(40\)"):
            model(input_ids=torch.tensor([llava_ids([1])]), pixel_values=torch.randn(1, 3, 48, 48))
    finally:
        handle.remove()
