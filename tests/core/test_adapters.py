"""The adapter is the one home of a family's facts: training parts, reference tokens, prompt defaults, q/k."""

import pytest
import torch

from adsc.adapters import adapter_for
from adsc.tiny import tiny_llava, tiny_qwen2_vl

from .family_checks import assert_queries_and_keys_reproduce_attention


@pytest.mark.parametrize("build, tokens, template, square", [
    (tiny_llava, 36, "vicuna_v1", True),  # 48 px / patch 8 -> 6 x 6
    (tiny_qwen2_vl, 576, "chat_template", False),
])
def test_family_facts(build, tokens, template, square):
    model = build(layers=2)
    adapter = adapter_for(model)
    assert adapter.reference_vision_tokens(model) == tokens
    assert (adapter.train_template, adapter.pad_to_square) == (template, square)
    for part in ("llm", "projector", "vision"):
        assert isinstance(model.get_submodule(adapter.training_parts[part]), torch.nn.Module)


def test_queries_and_keys_reproduce_the_layers_own_attention():
    """softmax(q k^T * scaling) from the adapter == the eager attention weights the layer returns."""
    model = tiny_llava(layers=2, attn="eager")
    hidden = torch.randn(1, 7, model.config.text_config.hidden_size)
    pos = model.model.language_model.rotary_emb(hidden, torch.arange(7)[None])
    assert_queries_and_keys_reproduce_attention(model, model.model.language_model.layers[0], hidden, pos)
