"""Hugging Face references for the vLLM path: the unpatched model, and adsc's own engine."""

from __future__ import annotations

import torch

import adsc


def load_hf(path: str):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    return model, AutoProcessor.from_pretrained(path)


def encode(processor, prompt: str, imgs):
    kwargs = {"images": imgs} if imgs else {}
    return processor(text=prompt, return_tensors="pt", **kwargs)


@torch.no_grad()
def continuation_logprobs(model, inputs, tokens: list[int], config: adsc.CompressionConfig | None):
    """Log-probs of each continuation token and the greedy choice at each step, from one forward over
    prompt + continuation (cached == uncached is a property of adsc's engine, tested in the main suite)."""
    ids = torch.cat([inputs["input_ids"], torch.tensor([tokens[:-1]], dtype=torch.long)], dim=1)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    handle = adsc.compress(model, config) if config is not None and config.layers else None
    try:
        logits = model(input_ids=ids, **extra).logits[0].float()
    finally:
        if handle is not None:
            handle.remove()
    start = inputs["input_ids"].shape[1] - 1
    logp = torch.log_softmax(logits[start:], dim=-1)
    chosen = logp[torch.arange(len(tokens)), torch.tensor(tokens)]
    return chosen, logp.argmax(-1), logp
