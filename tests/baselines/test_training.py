"""Gradient checkpointing replays stage layers: merges and renumbered positions must replay identically."""

import pytest
import torch

import adsc
from adsc.tiny import tiny_llava

from .helpers import N_IMG, llava_row, pixels


@pytest.mark.parametrize("method", ["tome", "pyramiddrop", "fastv"])
def test_checkpointed_gradients_equal_plain_ones(method):
    ids = torch.tensor([llava_row()])
    layers = (2, 3, 5) if method == "pyramiddrop" else (2,)
    grads = []
    for checkpoint in (False, True):
        model = tiny_llava(layers=6, attn="sdpa").train()
        if checkpoint:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        handle = adsc.compress(model, adsc.CompressionConfig(method=method, layers=layers, budget=20, vision_tokens=N_IMG))
        loss = model(input_ids=ids, pixel_values=pixels(1), labels=ids).loss
        loss.backward()
        grads.append(model.model.language_model.layers[3].self_attn.q_proj.weight.grad.clone())
        handle.remove()
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)
