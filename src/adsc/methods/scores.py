"""The few attention scores the score-based baselines need, computed explicitly.

Scores come from a decoder layer's own input norm, q/k projections and rotary (cos, sin),
so the model keeps its attention kernel (SDPA, FlashAttention); only one query row (or, for
FastV's "mean" variant, the image columns of every row) is ever formed. Works for Llama-style
and Qwen2-VL attention (``q_proj``/``k_proj`` with ``head_dim``, ``scaling``, GQA groups).
"""

from __future__ import annotations

import torch


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE as the models apply it: x * cos + rotate_half(x) * sin, cos/sin (B, T, hd)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def _heads(proj: torch.nn.Module, x: torch.Tensor, head_dim: int) -> torch.Tensor:
    batch, length, _ = x.shape
    return proj(x).view(batch, length, -1, head_dim).transpose(1, 2)  # (B, heads, T, hd)


def _expand(pos, batch: int):
    return tuple(t.expand(batch, *t.shape[1:]) if t.shape[0] != batch else t for t in pos)


def attention_scores(layer, hidden: torch.Tensor, position_embeddings, valid: torch.Tensor, mode: str = "last") -> torch.Tensor:
    """Softmax attention of ``layer`` received by every slot, mean over heads: (B, T) float32.

    ``hidden`` (B, T, d) is the layer's input, ``position_embeddings`` the (cos, sin) of those
    slots, ``valid`` (B, T) the real tokens (slots are causal in order). ``mode`` "last": the
    row of each sample's last real token. "mean": the mean over every real query row (masked
    entries count 0) -- "average attention received".
    """
    attn = layer.self_attn
    batch, length, _ = hidden.shape
    cos, sin = _expand(position_embeddings, batch)
    x = layer.input_layernorm(hidden)
    slots = torch.arange(length, device=hidden.device)
    keys = _rotate(_heads(attn.k_proj, x, attn.head_dim), cos, sin).float()
    if mode == "last":
        last = (valid.long() * slots).argmax(1)  # last real slot of each sample
        rows = torch.arange(batch, device=hidden.device)
        xq = x[rows, last][:, None]
        query = _rotate(_heads(attn.q_proj, xq, attn.head_dim), cos[rows, last][:, None], sin[rows, last][:, None])
        q_slots, q_valid = last[:, None], valid.new_ones(batch, 1)
    else:
        query = _rotate(_heads(attn.q_proj, x, attn.head_dim), cos, sin)
        q_slots, q_valid = slots.expand(batch, length), valid
    query = query.float()
    groups = query.shape[1] // keys.shape[1]
    allowed = valid[:, None, :] & (slots[None, None, :] <= q_slots[:, :, None])  # (B, Q, T)
    total = hidden.new_zeros(batch, length, dtype=torch.float32)
    for h in range(query.shape[1]):  # one head at a time bounds memory for the "mean" variant
        logits = query[:, h] @ keys[:, h // groups].transpose(-1, -2) * attn.scaling
        probs = logits.masked_fill(~allowed, float("-inf")).softmax(-1)
        total += torch.where(q_valid[..., None], probs, 0.0).sum(1)  # padding rows are all -inf: NaN
    return total / (query.shape[1] * q_valid.sum(1, keepdim=True))


def key_metric(layer, hidden: torch.Tensor) -> torch.Tensor:
    """ToMe's similarity metric: the layer's keys averaged over (KV) heads, before RoPE (B, T, hd).

    Before RoPE, so similarity reflects content rather than the two tokens' distance.
    """
    attn = layer.self_attn
    return _heads(attn.k_proj, layer.input_layernorm(hidden), attn.head_dim).float().mean(1)
