"""Hugging Face references for the vLLM path: the unpatched model, and adsc's own engine."""

from __future__ import annotations

import functools

import torch

import adsc
from adsc.processors import allow_qwen2_vl_without_torchvision


@functools.lru_cache(maxsize=None)
def load_hf(path: str):
    """(model, processor) of a saved tiny model, eager attention, float32; one load per folder per session."""
    import transformers
    from transformers import AutoConfig, AutoProcessor

    allow_qwen2_vl_without_torchvision()  # what adsc's vLLM plugin does in vLLM's processes
    architecture = AutoConfig.from_pretrained(path).architectures[0]
    model_class = getattr(transformers, architecture)
    model = model_class.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    return model, AutoProcessor.from_pretrained(path)


def encode(processor, prompt: str, imgs):
    kwargs = {"images": imgs} if imgs else {}
    return processor(text=prompt, return_tensors="pt", **kwargs)


@torch.no_grad()
def continuation_logprobs(model, inputs, tokens: list[int], config: adsc.CompressionConfig | None):
    """Log-probs of each continuation token and the greedy choice at each step, from one forward over
    prompt + continuation (cached == uncached is a property of adsc's engine, tested in the main suite)."""
    length = inputs["input_ids"].shape[1]
    ids = torch.cat([inputs["input_ids"], torch.tensor([tokens[:-1]], dtype=torch.long)], dim=1)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    if "mm_token_type_ids" in extra:  # Qwen2-VL's M-RoPE positions: the continuation is text (type 0)
        extra["mm_token_type_ids"] = torch.nn.functional.pad(extra["mm_token_type_ids"], (0, ids.shape[1] - length))
    handle = adsc.compress(model, config) if config is not None and config.layers else None
    try:
        logits = model(input_ids=ids, **extra).logits[0].float()
    finally:
        if handle is not None:
            handle.remove()
    logp = torch.log_softmax(logits[length - 1:], dim=-1)
    chosen = logp[torch.arange(len(tokens)), torch.tensor(tokens)]
    return chosen, logp.argmax(-1), logp
