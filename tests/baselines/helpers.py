"""Inputs, an engine-free reference forward, a naive ToMe, and a selection replayer for the baseline tests."""

from __future__ import annotations

import functools
import math

import torch

from adsc.engine import Selector
from adsc.tiny import IMAGE_TOKEN, PAD, VISION_START, tiny_llava, tiny_qwen2_vl

N_IMG = 36  # tiny_llava: 48 px / patch 8 -> 6 x 6 tokens per image


@functools.lru_cache(maxsize=None)
def llava(attn: str, layers: int = 6):
    return tiny_llava(layers=layers, attn=attn)


@functools.lru_cache(maxsize=None)
def qwen(attn: str = "sdpa"):
    return tiny_qwen2_vl(layers=6, attn=attn)


def llava_row(prefix=(1, 5, 6), images=1, suffix=(7, 8, 9)):
    row = list(prefix)
    for _ in range(images):
        row += [IMAGE_TOKEN] * N_IMG + [4]
    return row + list(suffix)


def pixels(n: int, seed: int = 0):
    return torch.randn(n, 3, 48, 48, generator=torch.Generator().manual_seed(seed))


def pad(rows, side: str):
    """(input_ids, attention_mask, position_ids) with rows padded on ``side``."""
    width = max(map(len, rows))
    ids = [([PAD] * (width - len(r)) + r) if side == "left" else (r + [PAD] * (width - len(r))) for r in rows]
    ids = torch.tensor(ids)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) if side == "left" else [1] * len(r) + [0] * (width - len(r))
                         for r in rows])
    return ids, mask, (mask.cumsum(1) - 1).clamp(min=0)


def qwen_inputs(grids=((1, 8, 8),), text=(40, 41, 42), tail=(43, 44)):
    row = list(text)
    for t, h, w in grids:
        row += [VISION_START] + [IMAGE_TOKEN] * (t * h * w // 4) + [45]
    ids = torch.tensor([row + list(tail)])
    pix = torch.randn(sum(t * h * w for t, h, w in grids), 3 * 2 * 14 * 14, generator=torch.Generator().manual_seed(1))
    return dict(input_ids=ids, pixel_values=pix, image_grid_thw=torch.tensor(grids),
                mm_token_type_ids=(ids == IMAGE_TOKEN).long())


class Replay(Selector):
    """Delegates to ``inner`` but keeps the recorded sets: an uncached recomputation of a longer
    sequence then drops exactly what the cached prefill dropped (FastV/PyramidDrop rank with the
    *last* token, which moves when generated tokens are appended)."""

    def __init__(self, inner, keeps):
        self.inner, self.keeps = inner, keeps
        self.reads_layer_before = inner.reads_layer_before

    def keep_vision(self, seq, step):
        self.inner.keep_vision(seq, step)  # lets the method record its per-sequence state
        keep = torch.zeros_like(seq.vision)
        keep[:, : self.keeps[step.stage].shape[1]] = self.keeps[step.stage]
        return keep & seq.vision

    def stage_positions(self, *args):
        return self.inner.stage_positions(*args)

    def stage_hidden(self, *args):
        return self.inner.stage_hidden(*args)


def kept_sets(trace):
    """Per stage, the (B, T) original-index mask of kept tokens of a finished prefill."""
    seq = trace.seq
    return [t.valid.new_zeros(seq.input_valid.shape).scatter(1, t.orig, t.valid) for t in seq.stages]


# ------------------------------------------------------------------ engine-free reference
class _Stop(Exception):
    pass


def layer0_inputs(model, **inputs):
    """Hidden states entering decoder layer 0 and the model's rotary (cos, sin), batch of one."""
    got = {}

    def grab(module, args, kwargs):
        got["h"] = args[0] if args else kwargs["hidden_states"]
        got["pos"] = kwargs["position_embeddings"]
        raise _Stop

    hook = model.model.language_model.layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        model(**inputs)
    except _Stop:
        pass
    finally:
        hook.remove()
    return got["h"], got["pos"]


def reference_forward(model, input_ids, pixel_values, reduce, renumber=False, proportional=False):
    """Layer by layer on one sample with explicit causal masks and *eager* attention weights.

    Before every layer l, ``attn[l]`` = that layer's full softmax attention (1, H, n, n) on the
    current tokens (from the model's own eager attention module). ``reduce(l, h, idx, size,
    attn)`` may return a new (h, idx, size) to run layer l and later on. Returns the last
    position's logits and, per layer, the original indices it processed.
    """
    lm = model.model.language_model
    h, (cos_full, sin_full) = layer0_inputs(model, input_ids=input_ids, pixel_values=pixel_values)
    idx = torch.arange(h.shape[1])
    size = torch.ones(h.shape[1])
    attn, seen = {}, []

    def positions(n_idx, like):
        if renumber:  # contiguous positions straight from the model's rotary module
            return lm.rotary_emb(like, position_ids=torch.arange(len(n_idx))[None])
        return cos_full[:, n_idx], sin_full[:, n_idx]

    def mask(n, sz):
        m = torch.full((n, n), torch.finfo(h.dtype).min).triu(1)
        if proportional:
            m = m + sz.log()[None, :]
        return m[None, None]

    for l, layer in enumerate(lm.layers):
        pos = positions(idx, h)
        _, attn[l] = layer.self_attn(layer.input_layernorm(h), position_embeddings=pos, attention_mask=mask(len(idx), size))
        out = reduce(l, h, idx, size, attn)
        if out is not None:
            h, idx, size = out
            pos = positions(idx, h)
        seen.append(idx.clone())
        h = layer(h, attention_mask=mask(len(idx), size), position_embeddings=pos, position_ids=None)
    return model.lm_head(lm.norm(h))[0, -1], seen


def keep_top_reference(h, idx, size, row, is_vision, k):
    """Keep the k vision tokens with the highest ``row`` value, everything else, in order."""
    vis = [i for i in range(len(idx)) if is_vision[idx[i]]]
    top = sorted(vis, key=lambda i: -float(row[i]))[:k]
    keep = torch.tensor(sorted(set(range(len(idx))) - set(vis) | set(top)))
    return h[:, keep], idx[keep], size[keep]


def naive_tome(metric, hidden, size, r):
    """Bipartite soft matching with plain Python loops: (src, dst) pairs, merged hidden, sizes."""
    n = metric.shape[0]
    a_set, b_set = list(range(0, n, 2)), list(range(1, n, 2))
    r = min(r, n // 2)
    cos = lambda u, v: float(torch.dot(u, v) / (u.norm() * v.norm()))  # noqa: E731
    edges = []
    for a in a_set:
        best_b, best = None, -math.inf
        for b in b_set:
            s = cos(metric[a], metric[b])
            if s > best:
                best_b, best = b, s
        edges.append((best, a, best_b))
    order = sorted(range(len(edges)), key=lambda e: -edges[e][0])  # stable: ties keep A order
    pairs = [(edges[e][1], edges[e][2]) for e in order[:r]]
    hidden, size = hidden.clone(), size.clone()
    for b in {d for _, d in pairs}:
        group = [b] + [a for a, d in pairs if d == b]
        total = sum(float(size[i]) for i in group)
        hidden[b] = sum(size[i] * hidden[i] for i in group) / total
        size[b] = total
    survivors = [i for i in range(n) if i not in {a for a, _ in pairs}]
    return pairs, hidden, size, survivors


def assert_matches_reference(trace, seen, logits, ref, layers: int = 6) -> None:
    """The engine kept exactly the reference's positions at every layer, and the logits agree."""
    for layer in range(layers):
        assert torch.equal(trace.positions(layer, 0), seen[layer]), layer
    torch.testing.assert_close(logits, ref, atol=1e-4, rtol=1e-4)
