"""Per-sequence bookkeeping: which original tokens each stage holds, and its attention masks.

Layout of a stage's sequence (one row per sample, ``T_s`` slots):

    [pad, pad, kept_0, kept_1, ..., kept_m]      kept tokens in original order, right-aligned

Kept tokens keep their original order, so "causal in slot order" equals "causal in original
order", and a 2-D key-validity mask is all FlashAttention needs. Padding slots sit on the left
like ordinary left padding; decode steps append on the right, exactly as the cache does.
Original padding tokens of the batch are not carried into any stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..adapters.base import CAUSAL, AttentionPattern, VisionSpan


@dataclass
class StageTable:
    orig: torch.Tensor  # (B, T_s) original index of each slot (pad slots: an unkept index)
    valid: torch.Tensor  # (B, T_s) real token in this slot
    src_slot: torch.Tensor  # (B, T_s) slot of the same token in the previous stage's sequence
    slot_of: torch.Tensor  # (B, T) slot of each original index in this stage (0 when absent)
    # (B, C) validity of the cached keys of this stage written so far (kv_valid: all of them)
    written_valid: torch.Tensor
    # (B, C) additive attention-logit bias per cached key (ToMe's log(size)); None = no bias
    kv_bias: torch.Tensor | None = None
    # kv_valid.all(), kept on the host: reading it from the device inside the decoder would stall
    # the GPU once per stage per decode step (the queue drains, the host launches into an idle GPU)
    all_valid: bool = False
    # every prefill slot holds a real token (what all_valid said before reserve() added room)
    prompt_valid: bool = False
    # real decode tokens recorded but not yet in written_valid (a DynamicCache's steps: most
    # steps build no mask, so the concatenation waits until one is read)
    pending_valid: int = 0

    @property
    def kv_valid(self) -> torch.Tensor:
        """(B, C) validity of every cached key of this stage; grows in decode."""
        if self.pending_valid:
            valid = self.written_valid
            self.written_valid = torch.cat([valid, valid.new_ones(valid.shape[0], self.pending_valid)], dim=1)
            self.pending_valid = 0
        return self.written_valid

    @kv_valid.setter
    def kv_valid(self, value: torch.Tensor) -> None:
        self.written_valid, self.pending_valid = value, 0

    @property
    def width(self) -> int:
        """Slots the prefill gave this stage (the widest sample's kept tokens)."""
        return self.valid.shape[1]

    def reserve(self, slots: int) -> None:
        """Fixed-capacity keys (a :class:`~adsc.engine.cache.StageCache`): ``slots`` in all, those
        after the prefill's invalid until a decode step writes them in place, so every shape stays
        fixed (:meth:`SequenceState.pack_fixed` moves them into the cache's buffer)."""
        pad = self.kv_valid.new_zeros(self.kv_valid.shape[0], slots - self.width)
        self.kv_valid = torch.cat([self.kv_valid, pad], dim=1)
        # unwritten slots are never valid keys: a decode step always needs the mask
        self.prompt_valid, self.all_valid = self.all_valid, False

    def key_bias(self) -> torch.Tensor | None:
        """``kv_bias`` over every key slot: a merging selector sets it for the prefill's slots only,
        the slots decode steps fill (single tokens) have bias 0."""
        bias = self.kv_bias
        missing = 0 if bias is None else self.kv_valid.shape[1] - bias.shape[1]
        if missing > 0:
            self.kv_bias = bias = torch.cat([bias, bias.new_zeros(bias.shape[0], missing)], dim=1)
        return bias

    @classmethod
    def from_keep(cls, keep: torch.Tensor, prev: "StageTable | None") -> "StageTable":
        batch, length = keep.shape
        kept = keep.sum(1)
        width, fewest = torch.stack([kept.max(), kept.min()]).tolist()  # one device read for both
        # stable sort puts unkept positions first, kept ones after them in original order
        order = torch.argsort(keep.to(torch.int8), dim=1, stable=True)
        orig = order[:, length - width :]
        valid = keep.gather(1, orig)
        slot_of = torch.zeros_like(keep, dtype=torch.long)
        slots = torch.arange(width, device=keep.device).expand(batch, width)
        slot_of.scatter_(1, orig, torch.where(valid, slots, 0))
        src = orig if prev is None else prev.slot_of.gather(1, orig)
        return cls(orig, valid, src, slot_of, valid.clone(), all_valid=fewest == width)


@dataclass
class SequenceState:
    """Compression state of one batch of sequences; travels with its KV cache."""

    input_valid: torch.Tensor  # (B, T) the prefill's attention mask as bool
    vision: torch.Tensor  # (B, T) vision-token positions
    spans: list[list[VisionSpan]]
    stage_layers: tuple[int, ...]
    stages: list[StageTable] = field(default_factory=list)
    generated: int = 0  # decoded tokens so far (DynamicCache: counted on the host)
    # StageCache: decoded tokens as a 0-d device tensor, advanced in place, so a compiled decode
    # step neither reads the device nor changes a Python number (which would recompile it)
    decoded: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)  # selectors' per-sequence scratch (merge plans, ...)
    # (B, T) image block of every prompt token (-1: none) for layers whose pattern has image_blocks
    blocks: torch.Tensor | None = None
    # (stage, pattern id) -> a one-token decode mask every later step reuses (built once, not once
    # per step): with a StageCache a view of the stage's fixed key-validity buffer, which the steps
    # write in place; with a DynamicCache None (no mask needed) while every key is a real token
    step_masks: dict = field(default_factory=dict)
    # StageCache, after the prefill (pack_fixed): every stage's kv_valid as a slice of one buffer
    # (B, sum of capacities), each stage's first decode slot in it, and the slot the next decoded
    # token goes to (write_slots + decoded, advanced in place: no index arithmetic per step)
    all_kv_valid: torch.Tensor | None = None
    write_slots: torch.Tensor | None = None
    write_index: torch.Tensor | None = None
    buffers: dict | None = None  # StageCache: its engine buffers (fixed addresses kept across prefills)
    # the attention implementation the prefill's masks were built for, which the decode steps of
    # this cache keep (reading it through the model's config costs more than a decode step's
    # whole mask work)
    attn_impl: str = "eager"
    # decode steps keep the model's rotary (cos, sin) in every stage (Selector.shifts_decode_positions,
    # asked once, at the end of the prefill; False until then: each stage asks for its own)
    decode_positions_shared: bool = False

    @property
    def batch(self) -> int:
        return self.input_valid.shape[0]

    @property
    def length(self) -> int:
        return self.input_valid.shape[1]

    def append(self, new_valid: torch.Tensor | None, all_new_valid: bool, q_len: int) -> None:
        """Record ``q_len`` decode-step tokens: they are kept by every stage. ``all_new_valid`` is
        ``new_valid.all()``, known on the host (the caller reads it at most once per step);
        ``new_valid`` may be None then. Real tokens are only counted (kv_valid appends them when
        read); a decoded token's bias is 0, which key_bias() pads."""
        for table in self.stages:
            if all_new_valid:
                table.pending_valid += q_len
            else:
                table.kv_valid = torch.cat([table.kv_valid, new_valid.to(table.written_valid.device)], dim=1)
                table.all_valid = False
        if not all_new_valid:  # a stage may hold padding now: its mask-free steps need a mask again
            self.step_masks.clear()
        self.generated += q_len

    def start_fixed(self, device, buffers: dict) -> None:
        """Fixed shapes from here on (a StageCache): stages reserve room, decode steps write in place;
        ``buffers`` (the cache's) keeps the addresses for its next prefill."""
        self.buffers = buffers
        self.decoded = fixed_buffer(buffers, "decoded", torch.zeros((), dtype=torch.long, device=device))

    def pack_fixed(self) -> None:
        """After a prefill into a StageCache: every stage's key validity becomes a slice of one
        fixed buffer (B, sum of capacities), and ``write_slots`` holds each stage's first decode
        slot in it, so a decode step records its tokens in every stage with a single write."""
        tables = self.stages
        flat = fixed_buffer(self.buffers, "kv_valid", torch.cat([t.kv_valid for t in tables], dim=1))
        first, slots = 0, []
        for table in tables:
            capacity = table.kv_valid.shape[1]
            table.kv_valid, slots = flat[:, first : first + capacity], slots + [first + table.width]
            first += capacity
        self.all_kv_valid = flat
        self.write_slots = fixed_buffer(self.buffers, "write_slots", torch.tensor(slots, device=flat.device))
        self.write_index = fixed_buffer(self.buffers, "write_index", self.write_slots.clone())
        # what a one-token step of real tokens writes into every stage (most steps: no mask given)
        fixed_buffer(self.buffers, "real_step", torch.ones(self.batch, len(slots), dtype=torch.bool, device=flat.device))

    def append_fixed(self, new_valid: torch.Tensor | None, q_len: int = 1) -> None:
        """Record ``q_len`` decode-step tokens in the stages' fixed key slots (``new_valid`` (B, q_len),
        None: all real): pure tensor work, no device read; a one-token step is 3 tensor ops whatever
        the number of stages (write, advance the write slots, advance the step counter)."""
        if self.write_slots is None:
            raise ValueError("the prefill into this StageCache did not finish (it raised): reset() the cache and prefill again")
        flat, index = self.all_kv_valid, self.write_index
        if q_len == 1:
            source = self.buffers["real_step"] if new_valid is None else new_valid.to(flat.device).expand(-1, index.shape[0])
        else:  # stage-major, like the source below
            if new_valid is None:
                new_valid = torch.ones(self.batch, q_len, dtype=torch.bool, device=flat.device)
            source = new_valid.to(flat.device).repeat(1, index.shape[0])
            index = (index[:, None] + torch.arange(q_len, device=flat.device)).flatten()
        flat.index_copy_(1, index, source)
        self.write_index.add_(q_len)
        self.decoded.add_(q_len)

    def end(self, table: StageTable):
        """One past the newest written key slot of ``table``: its width plus the decoded tokens
        (a device tensor for fixed caches, so nothing is read), None for growing caches."""
        return None if self.decoded is None else self.decoded + table.width

    @property
    def decoded_tokens(self) -> int:
        return self.generated if self.decoded is None else int(self.decoded)


def fixed_buffer(buffers: dict, key, value: torch.Tensor) -> torch.Tensor:
    """``value`` in a buffer whose address stays across prefills of the same shape: torch.compile
    guards a static address by identity, so a new one would recompile the decode step. Marked as
    static (mutated in place by decode steps, which CUDA graphs need) outside compiled regions,
    as transformers' StaticLayer does."""
    buffer = buffers.get(key)
    if buffer is not None and buffer.shape == value.shape and buffer.dtype == value.dtype and buffer.device == value.device:
        return buffer.copy_(value)
    buffers[key] = value
    if not torch.compiler.is_compiling():
        torch._dynamo.mark_static_address(value)
    return value


def shares_memory(view, buffer: torch.Tensor) -> bool:
    """Whether ``view`` is a tensor over ``buffer``'s memory (so it changes when ``buffer`` is written in place)."""
    return torch.is_tensor(view) and view.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr()


def as_pattern(pattern):
    """An adapter's pattern, with the name ``"causal"`` (what adapters returned before
    :class:`AttentionPattern`) read as ``CAUSAL``; anything else unchanged (check_pattern judges it)."""
    return CAUSAL if pattern == "causal" else pattern


def check_pattern(pattern, layer: int | None = None) -> None:
    """Refuse an attention pattern no stage mask is built for, instead of silently using causal."""
    if not isinstance(as_pattern(pattern), AttentionPattern):
        where = "" if layer is None else f" (decoder layer {layer})"
        raise ValueError(
            f"adsc cannot build a stage mask for attention pattern {pattern!r}{where}, only for an "
            "adsc.adapters.base.AttentionPattern (causal, sliding window, image blocks): compressing these layers would "
            "change what their tokens attend to; keep pruning layers before them, or give the adapter's mask_pattern "
            "the layer's AttentionPattern"
        )


def key_layout(seq: SequenceState, table: StageTable, kv_len: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(original position, image block) of each of a stage's ``kv_len`` key slots, both (B, kv_len).

    Prefill slots hold ``table.orig``; the slots after them are decode tokens, at original
    positions T, T + 1, ... and in no block (-1). A non-causal pattern is applied to these, so a
    window is measured in uncompressed positions and a block is the model's own."""
    batch, width = table.orig.shape
    device = table.kv_valid.device
    orig = table.orig.to(device)
    later = kv_len - width
    if later > 0:
        decoded = torch.arange(seq.length, seq.length + later, device=device).expand(batch, later)
        orig = torch.cat([orig, decoded], dim=1)
    if seq.blocks is None:
        return orig, None
    block = seq.blocks.to(device).gather(1, table.orig.to(device))
    if later > 0:
        block = torch.cat([block, block.new_full((batch, later), -1)], dim=1)
    return orig, block


def apply_pattern(allowed, kv_valid, pattern: AttentionPattern, q_slots, layout):
    """``allowed`` (B, q, C) causal-in-slots, widened by image blocks and narrowed by a window, as
    the model composes them: AND(window, OR(causal, same block)), keys still restricted to valid ones.

    ``q_slots`` (q,) or (B, q): the key slots the queries sit in; ``layout`` = (original position,
    block) of every key slot (:func:`key_layout`). The score-based methods use it too."""
    k_orig, k_block = layout
    q_slots = q_slots.expand(allowed.shape[0], -1)
    if pattern.image_blocks and k_block is not None:
        q_block = k_block.gather(1, q_slots)
        same = (q_block[:, :, None] == k_block[:, None, :]) & (q_block[:, :, None] >= 0)
        allowed = allowed | same & kv_valid[:, None, :]
    if pattern.window is not None:
        q_orig = k_orig.gather(1, q_slots)
        allowed = allowed & (q_orig[:, :, None] - k_orig[:, None, :] < pattern.window)
    return allowed


FIXED_END = "fixed"  # stage_mask's end for a one-token step into a fixed buffer, where only that matters


def stage_mask(kv_valid: torch.Tensor, q_len: int, impl: str, dtype: torch.dtype, kv_bias: torch.Tensor | None = None,
               all_valid: bool = False, pattern=CAUSAL, end=None, layout=None, fills_head: bool = False):
    """Attention mask for ``q_len`` new queries over a stage's ``C`` keys, in ``impl``'s format.

    Causal in slot order, keys restricted to valid slots. Every query may see itself so that
    padding slots never form an all-masked row (their outputs are never read). ``kv_bias``
    (B, C) is added to the logits of each key; it needs an additive float mask (eager, sdpa).
    ``all_valid`` says (from the host) that every key is valid, which allows the mask-free paths;
    False is always correct, only slower. ``pattern`` is the layer's own attention pattern (the
    adapter's ``mask_pattern``, an :class:`AttentionPattern`); a sliding window or image blocks
    are applied in original positions from ``layout`` (:func:`key_layout`), so they need eager or
    sdpa and never take the mask-free paths. ``end`` is one past the newest query's slot when the
    keys are a fixed-capacity buffer with unwritten slots after it (an int or a 0-d tensor;
    default: the last key is the newest query; ``FIXED_END``: such a buffer, end not computed, which a
    one-token step of a plain causal pattern needs no more than). ``fills_head``: the queries are the
    first ``q_len`` slots of a fixed buffer whose later slots are unwritten (a prefill into a StageCache), and
    ``all_valid`` says that those ``q_len`` are real tokens: SDPA's own causal path, aligned top-left,
    then masks the unwritten keys by itself (transformers' static-cache prefill relies on the same;
    FlashAttention's is aligned bottom-right, so it still gets the key validity).
    """
    check_pattern(pattern)
    pattern = as_pattern(pattern)
    plain = pattern == CAUSAL
    if not plain and layout is None:
        raise ValueError(f"attention pattern {pattern} needs the keys' original positions (state.key_layout)")
    batch, kv_len = kv_valid.shape
    if impl.startswith("flash"):
        if kv_bias is not None:
            raise ValueError(
                "a per-key attention bias (ToMe's proportional attention) needs attn_implementation 'eager' or "
                "'sdpa'; FlashAttention takes no additive mask. Use options={'proportional_attention': False}"
            )
        if not plain:
            raise ValueError(
                f"attention pattern {pattern} (sliding window / bidirectional image blocks in original positions) needs "
                "attn_implementation 'eager' or 'sdpa': FlashAttention takes key validity only"
            )
        # FlashAttention aligns a causal mask bottom-right: unwritten slots after a prefill need the mask
        return None if all_valid and not fills_head else kv_valid.to(torch.int32)
    # transformers' SDPA call is causal only for several queries: one query with a mask-free call
    # sees every key, right only when every key is valid (not so with unwritten slots)
    shapes = q_len == kv_len or (q_len > 1 if fills_head else q_len == 1)
    if plain and impl == "sdpa" and all_valid and kv_bias is None and shapes:
        return None  # SDPA's own is_causal path (fast kernels, no mask built or converted per layer)
    device = kv_valid.device
    if end is not None and q_len == 1 and pattern.window is None:
        # a fixed buffer's one-token step: its slot is written (a decode step writes before the
        # layers) and later slots are invalid, so validity alone is causal; a padding query still
        # sees its sample's earlier real keys, so no row is all-masked. One view, no index work.
        # (A decode query is text, in no image block: only a window would narrow it.)
        allowed = kv_valid[:, None, None, :]
    else:
        if end is FIXED_END:
            raise ValueError("stage_mask: several queries or a patterned layer need the fixed buffer's end, not FIXED_END")
        end = kv_len if end is None else end
        q_index = torch.arange(q_len, device=device) + (end - q_len)
        q_pos = q_index[:, None]
        k_pos = torch.arange(kv_len, device=device)[None, :]
        allowed = kv_valid[:, None, :] & (k_pos <= q_pos)
        if not plain:
            allowed = apply_pattern(allowed, kv_valid, pattern, q_index, layout)
        allowed = (allowed | (k_pos == q_pos))[:, None]  # (B, 1, q, kv)
    if impl == "eager" or kv_bias is not None:
        zero = torch.zeros((), dtype=dtype, device=device)
        mask = torch.where(allowed, zero, torch.finfo(dtype).min)
        if kv_bias is not None:  # bias >= 0 on allowed keys only, so min + bias never overflows
            mask = mask + torch.where(allowed, kv_bias[:, None, None, :].to(device, dtype), zero)
        return mask
    return allowed


def gather_positions(position_embeddings, orig: torch.Tensor):
    """Rotary (cos, sin) of each slot's *original* position, so kept tokens keep their positions."""
    batch, width = orig.shape
    out = []
    for t in position_embeddings:
        t = t.expand(batch, *t.shape[1:]) if t.shape[0] != batch else t
        index = orig.to(t.device)[..., None].expand(batch, width, t.shape[-1])
        out.append(t.gather(1, index))
    return tuple(out)


def gather_slots(hidden: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    return hidden.gather(1, slots.to(hidden.device)[..., None].expand(*slots.shape, hidden.shape[-1]))


def scatter_back(hidden: torch.Tensor, table: StageTable, length: int) -> torch.Tensor:
    """Hidden states of the last stage placed at their original positions; dropped ones are 0."""
    batch, _, dim = hidden.shape
    hidden = hidden * table.valid.to(hidden.device)[..., None].to(hidden.dtype)
    index = table.orig.to(hidden.device)[..., None].expand(-1, -1, dim)
    return hidden.new_zeros(batch, length, dim).scatter(1, index, hidden)
