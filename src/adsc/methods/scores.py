"""The few attention scores the score-based baselines need, computed explicitly.

Scores come from a decoder layer's own queries and keys, formed the way the architecture forms
them (:meth:`adsc.adapters.Adapter.queries` / ``keys``: input norm, q/k projections, per-head q/k
norms where the model has them, rotary (cos, sin)), so the model keeps its attention kernel
(SDPA, FlashAttention); only one query row (or, for FastV's "mean" variant, the image columns of
every row) is ever formed. GQA groups are read off the head counts.
"""

from __future__ import annotations

import torch

from ..adapters.base import CAUSAL, expand_to_batch
from ..engine.state import apply_pattern


def attention_scores(adapter, layer, hidden: torch.Tensor, position_embeddings, valid: torch.Tensor,
                     mode: str = "last", pattern=CAUSAL, layout=None) -> torch.Tensor:
    """Softmax attention of ``layer`` received by every slot, mean over heads: (B, T) float32.

    ``hidden`` (B, T, d) is the layer's input, ``position_embeddings`` the (cos, sin) of those
    slots, ``valid`` (B, T) the real tokens (slots are causal in order). ``mode`` "last": the
    row of each sample's last real token. "mean": the mean over every real query row (masked
    entries count 0) -- "average attention received". ``pattern`` is the layer's own attention
    pattern (a sliding window, image blocks: Gemma 3), applied in original positions from
    ``layout`` = (original index, image block) of every slot, as the layer itself attends.
    """
    batch, length, _ = hidden.shape
    slots = torch.arange(length, device=hidden.device)
    keys = adapter.keys(layer, hidden, position_embeddings)
    if mode == "last":
        last = (valid.long() * slots).argmax(1)  # last real slot of each sample
        rows = torch.arange(batch, device=hidden.device)
        cos, sin = expand_to_batch(position_embeddings, batch)
        query = adapter.queries(layer, hidden[rows, last][:, None], (cos[rows, last][:, None], sin[rows, last][:, None]))
        q_slots, q_valid = last[:, None], valid.new_ones(batch, 1)
    else:
        query = adapter.queries(layer, hidden, position_embeddings)
        q_slots, q_valid = slots.expand(batch, length), valid
    groups, scaling = query.shape[1] // keys.shape[1], adapter.attention_scaling(layer)
    allowed = valid[:, None, :] & (slots[None, None, :] <= q_slots[:, :, None])  # (B, Q, T)
    if pattern != CAUSAL:
        allowed = apply_pattern(allowed, valid, pattern, q_slots, layout)
    total = hidden.new_zeros(batch, length, dtype=torch.float32)
    for h in range(query.shape[1]):  # one head at a time bounds memory for the "mean" variant
        logits = query[:, h] @ keys[:, h // groups].transpose(-1, -2) * scaling
        probs = logits.masked_fill(~allowed, float("-inf")).softmax(-1)
        total += torch.where(q_valid[..., None], probs, 0.0).sum(1)  # padding rows are all -inf: NaN
    return total / (query.shape[1] * q_valid.sum(1, keepdim=True))


def slot_layout(seq, orig: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(original index, image block) of slots holding original indices ``orig`` (B, T_s), for ``layout``."""
    return orig, None if seq.blocks is None else seq.blocks.to(orig.device).gather(1, orig)


def key_metric(adapter, layer, hidden: torch.Tensor) -> torch.Tensor:
    """ToMe's similarity metric: the layer's keys averaged over (KV) heads, before RoPE (B, T, hd).

    Before RoPE, so similarity reflects content rather than the two tokens' distance.
    """
    return adapter.keys(layer, hidden).mean(1)
