"""The analytical model: FLOPs of prefill and decode and the KV cache, layer by layer.

One FLOP is one multiply or one add, so a matmul of (m x k) by (k x n) costs 2*m*k*n -- the
convention of ``torch.utils.flop_counter`` and of DeepSpeed's profiler. Only matrix products are
counted (linears, the patch convolution, attention scores and values):
norms, activations and softmax are < 0.1 % of a 7B forward and neither counter sees them.

What each counter sees is a *convention*, not physics, so every choice is a field of
:class:`Conventions` and is printed with the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .shapes import ModelShape


@dataclass(frozen=True)
class Conventions:
    # "rect": scores/values over the full q x kv rectangle (what SDPA / matmul counters report,
    # causal mask or not); "causal": only the lower triangle a causal kernel actually needs.
    attention: str = "rect"
    # tokens the LM head runs on in prefill: "last" (HF generate passes logits_to_keep=1),
    # "all" (a plain forward: every original position; adsc scatters survivors back), or
    # "survivors" (an implementation that leaves the pruned tokens out of the final hidden states).
    lm_head: str = "last"
    vision: bool = True  # vision tower + projector included
    kv_dtype_bytes: int = 2  # fp16/bf16 cache
    kv_copies: int = 1  # 2: old and new cache alive together during a decode step (tuple caches)
    # add the prefill logits (their dtype's bytes, 0 = ignore) to the memory peak of the prefill
    logits_bytes: int = 0
    # DynamicCache.update concatenates: for a moment a layer's old keys and its new keys are
    # both alive. Adds the largest single key tensor of the last decode step to the peak.
    cat_transient: bool = False
    # bytes moved per decode step: weight bytes per parameter, and which keys attention reads:
    # "used" (the tokens cached so far, a growing cache) or "capacity" (a fixed buffer read whole,
    # e.g. adsc.StageCache or StaticCache under a mask)
    weight_dtype_bytes: int = 2
    kv_read: str = "used"
    # what a sliding-window layer caches: "window" (transformers' DynamicSlidingWindowLayer: the
    # last window - 1 tokens, so a decode step attends over at most window keys; a compressed
    # stage's sliding layer too, its last window - 1 slots) or "full" (every token: a cache made
    # without the model's config, whose layers are all full length)
    sliding_cache: str = "window"

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


@dataclass
class LayerCost:
    layer: int
    prompt_tokens: int  # tokens this layer processes (and caches) in prefill, per sample
    vision_tokens: int
    prefill_flops: int = 0
    decode_flops: int = 0
    window: int | None = None  # the layer's sliding window (None: full attention)
    cached_after_prefill: int = 0  # tokens the layer's cache holds after prefill, per sample
    kv_bytes: int = 0  # cache of this layer at the end of generation (all copies, whole batch)
    decode_kv_read: int = 0  # KV bytes attention reads in all decode steps together (whole batch)


@dataclass
class Account:
    shape: ModelShape
    conventions: Conventions
    text_tokens: int
    new_tokens: int
    batch: int
    layers: list[LayerCost] = field(default_factory=list)
    vision_flops: int = 0
    projector_flops: int = 0
    lm_head_prefill: int = 0
    lm_head_decode: int = 0
    prefill_logits_bytes: int = 0
    cat_transient_bytes: int = 0
    weight_bytes_per_step: int = 0  # weights one decode step reads: every decoder linear + the LM head

    @property
    def decode_steps(self) -> int:
        return max(self.new_tokens - 1, 0)

    @property
    def decode_step_bytes(self) -> float:
        """Bytes one decode step moves, averaged over the steps: the weights once (batch-independent)
        plus every layer's keys and values. The floor of a step's time on a bandwidth-bound device."""
        steps = self.decode_steps
        return self.weight_bytes_per_step + (sum(l.decode_kv_read for l in self.layers) / steps if steps else 0)

    @property
    def prefill_flops(self) -> int:
        return self.vision_flops + self.projector_flops + self.lm_head_prefill + sum(l.prefill_flops for l in self.layers)

    @property
    def decode_flops(self) -> int:
        return self.lm_head_decode + sum(l.decode_flops for l in self.layers)

    @property
    def total_flops(self) -> int:
        return self.prefill_flops + self.decode_flops

    @property
    def kv_bytes(self) -> int:
        """KV cache at the end of generation, where it is largest."""
        return sum(l.kv_bytes for l in self.layers)

    @property
    def prefill_kv_bytes(self) -> int:
        c = self.conventions
        per_token = self.shape.text.kv_bytes_per_token(c.kv_dtype_bytes) * self.batch
        return sum(l.cached_after_prefill for l in self.layers) * per_token

    @property
    def peak_bytes(self) -> int:
        """The larger of: the prefill cache plus its logits, or the cache at the last decode step
        plus the concatenation transient (each only where the conventions ask for it)."""
        return max(self.kv_bytes + self.cat_transient_bytes, self.prefill_kv_bytes + self.prefill_logits_bytes)

    def to_dict(self) -> dict:
        return {
            "model": self.shape.name,
            "conventions": asdict(self.conventions),
            "text_tokens": self.text_tokens,
            "new_tokens": self.new_tokens,
            "batch": self.batch,
            "flops": {
                "total": self.total_flops, "prefill": self.prefill_flops, "decode": self.decode_flops,
                "vision_tower": self.vision_flops, "projector": self.projector_flops,
                "lm_head_prefill": self.lm_head_prefill, "lm_head_decode": self.lm_head_decode,
            },
            "kv_bytes": self.kv_bytes,
            "peak_bytes": self.peak_bytes,
            "prefill_kv_bytes": self.prefill_kv_bytes,
            "prefill_logits_bytes": self.prefill_logits_bytes,
            "cat_transient_bytes": self.cat_transient_bytes,
            "decode_step_bytes": self.decode_step_bytes,
            "weight_bytes_per_step": self.weight_bytes_per_step,
            "layers": [asdict(l) for l in self.layers],
        }


def attention_flops(q: int, kv: int, heads: int, head_dim: int, causal: bool, window: int | None = None) -> int:
    """QK^T plus AV for ``q`` queries that are the last ``q`` of ``kv`` keys.

    ``causal``: only the (query, key) pairs the mask allows -- key k <= query i, and with a
    ``window`` also i - k < window, so query i sees min(i + 1, window) keys; otherwise the whole
    q x kv rectangle (a windowed mask does not shrink what SDPA / matmul compute)."""
    if not causal:
        return 2 * 2 * q * kv * heads * head_dim
    pairs = _visible(kv, window) - _visible(kv - q, window)
    return 2 * 2 * pairs * heads * head_dim


def _visible(n: int, window: int | None) -> int:
    """Keys the first ``n`` queries of a causal (windowed) mask see together: sum of min(i + 1, window)."""
    if window is None or n <= window:
        return n * (n + 1) // 2
    return window * (window + 1) // 2 + (n - window) * window


def vision_flops(shape: ModelShape, images: int = 1) -> tuple[int, int]:
    """(tower, projector) FLOPs for ``images`` images. The tower always runs every layer."""
    v = shape.vision
    patch = 2 * v.patches * v.patch_in * v.hidden
    per_layer = 2 * v.seq * (4 * v.hidden * v.hidden + 2 * v.hidden * v.intermediate)
    per_layer += attention_flops(v.seq, v.seq, v.heads, v.hidden // v.heads, causal=False)  # bidirectional
    projector = sum(2 * v.projector_tokens * i * o for i, o in v.projector)
    return images * (patch + v.layers * per_layer), images * projector


def account(
    shape: ModelShape,
    vision_per_layer: list[int] | None = None,
    text_tokens: int = 64,
    new_tokens: int = 1,
    batch: int = 1,
    conventions: Conventions = Conventions(),
    lm_head_prefill_tokens: int | None = None,
) -> Account:
    """FLOPs and KV bytes of one ``generate`` call (prefill, then ``new_tokens - 1`` decode steps).

    ``vision_per_layer`` is the number of vision tokens each decoder layer processes (default:
    all of them, i.e. no compression; use ``Schedule.tokens_per_layer()``). ``text_tokens`` is
    every prompt token that is not a vision token. The last generated token is never fed back,
    so the cache ends at prompt + new_tokens - 1 tokens per layer. ``new_tokens=1`` is a
    single forward pass.
    """
    t = shape.text
    if vision_per_layer is None:
        vision_per_layer = [shape.vision_tokens] * t.layers
    if len(vision_per_layer) != t.layers:
        raise ValueError(f"need {t.layers} per-layer vision counts, got {len(vision_per_layer)}")
    conv = conventions
    causal = conv.attention == "causal"
    acc = Account(shape, conv, text_tokens, new_tokens, batch)
    steps = max(new_tokens - 1, 0)
    kv_token = t.kv_bytes_per_token(conv.kv_dtype_bytes)
    for idx, v in enumerate(vision_per_layer):
        n = text_tokens + v
        window = t.window(idx)
        row = LayerCost(idx, n, v, window=window)
        row.prefill_flops = 2 * n * t.linear_params + attention_flops(n, n, t.heads, t.head_dim, causal, window)
        # a sliding cache keeps window - 1 tokens: a step attends over at most window keys
        held = (lambda length: length) if window is None or conv.sliding_cache == "full" else (
            lambda length: min(length, window - 1))
        for j in range(1, steps + 1):
            keys = held(n + j - 1) + 1  # the cached keys plus the new one
            row.decode_flops += 2 * t.linear_params + attention_flops(1, keys, t.heads, t.head_dim, causal, window)
        end_len = n + steps
        row.cached_after_prefill = held(n)
        # step j attends over its cached keys and itself; a fixed buffer is read whole
        read = [held(end_len) if conv.kv_read == "capacity" else held(n + j - 1) + 1 for j in range(1, steps + 1)]
        row.decode_kv_read = kv_token * batch * sum(read)
        # two copies: the previous step's cache (one shorter) and the new one
        kept = held(end_len)
        row.kv_bytes = kv_token * (kept if conv.kv_copies == 1 else 2 * kept - (1 if steps and kept == end_len else 0))
        row.prefill_flops *= batch
        row.decode_flops *= batch
        row.kv_bytes *= batch
        acc.layers.append(row)
        if conv.cat_transient and steps:
            old_keys = batch * (kv_token // 2) * held(end_len - 1)
            acc.cat_transient_bytes = max(acc.cat_transient_bytes, old_keys)
    if conv.vision:
        acc.vision_flops, acc.projector_flops = (x * batch for x in vision_flops(shape))
    full_len = text_tokens + shape.vision_tokens
    if lm_head_prefill_tokens is None:
        lm_head_prefill_tokens = {"last": 1, "all": full_len, "survivors": text_tokens + vision_per_layer[-1]}[conv.lm_head]
    head = 2 * t.hidden * t.vocab
    acc.lm_head_prefill = batch * head * lm_head_prefill_tokens
    acc.lm_head_decode = batch * head * steps
    acc.weight_bytes_per_step = (t.layers * t.linear_params + t.hidden * t.vocab) * conv.weight_dtype_bytes
    acc.prefill_logits_bytes = batch * lm_head_prefill_tokens * t.vocab * conv.logits_bytes
    return acc
