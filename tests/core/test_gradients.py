"""Training through the compressed forward: LoRA, the projector, gradient checkpointing."""

import torch
from peft import LoraConfig, get_peft_model

import adsc
from adsc.tiny import IMAGE_TOKEN, tiny_llava

from .helpers import llava_ids, pad_batch

CFG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


def lora_model():
    model = tiny_llava(layers=6, attn="sdpa")
    # random B (not the zero default) so that both LoRA factors must receive gradient
    lora = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                      target_modules=r".*language_model.*\.(q|k|v|o|gate|up|down)_proj",
                      modules_to_save=["multi_modal_projector"])
    return get_peft_model(model, lora)


def batch():
    ids, mask, _ = pad_batch([llava_ids([1, 5, 6, 7]), llava_ids([1], n_images=2)], "right")
    labels = ids.masked_fill((ids == IMAGE_TOKEN) | (mask == 0), -100)
    return dict(input_ids=ids, attention_mask=mask, labels=labels,
                pixel_values=torch.randn(3, 3, 48, 48, generator=torch.Generator().manual_seed(0)))


def grads(model, checkpointing: bool):
    model.train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    else:
        model.gradient_checkpointing_disable()
    model.zero_grad()
    out = model(**batch())
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def test_lora_and_projector_get_gradients_with_and_without_checkpointing():
    model = lora_model()
    names_before = [n for n, _ in model.named_parameters()]
    handle = adsc.compress(model, CFG)  # after get_peft_model: hooks, no renamed parameters
    assert [n for n, _ in model.named_parameters()] == names_before
    out, plain = grads(model, checkpointing=False)
    assert out.logits.shape[:2] == batch()["input_ids"].shape  # loss over labels keeps its shape
    lora = [n for n in plain if "lora_" in n]
    projector = [n for n in plain if "multi_modal_projector" in n]
    assert lora and projector
    assert all(plain[n].abs().sum() > 0 for n in lora + projector)
    # LoRA on a layer past the last drop still learns through the survivors
    assert any("layers.5." in n and plain[n].abs().sum() > 0 for n in lora)
    _, ckpt = grads(model, checkpointing=True)
    for name, g in plain.items():
        assert torch.allclose(g, ckpt[name], atol=1e-6, rtol=1e-4), name
    handle.remove()


def test_compress_before_peft_wrapping_also_works():
    model = tiny_llava(layers=6)
    handle = adsc.compress(model, CFG)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q|v)_proj")
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        peft_model(**{k: v for k, v in batch().items() if k != "labels"})
    assert handle.last_trace.vision_tokens(1)[-1] == 18
    assert adsc.get_handle(peft_model) is handle
    handle.remove()
