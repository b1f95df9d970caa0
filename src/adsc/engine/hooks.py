"""The hook engine: attaches to a loaded model without touching its code or parameter names.

Hooks installed by :class:`CompressionHandle`:

1. a forward pre-hook on the multimodal core (e.g. ``LlavaModel``): reads ``input_ids``,
   finds the vision tokens, and opens a :class:`SequenceState` (prefill) or resumes the one
   stored on the KV cache (decode);
2. a forward pre-hook on every decoder layer from the first pruning layer on: at a stage's
   first layer it gathers the kept tokens out of the hidden states; on every such layer it
   swaps in the stage's attention mask and the rotary (cos, sin) of the kept tokens'
   *original* positions;
3. a forward hook on the last decoder layer: scatters the survivors back to their original
   positions so logits and labels keep their usual (B, T) shape.

The handle runs a finished :class:`~adsc.schedule.Schedule` and :class:`Selector`; it never asks
which method they came from (:func:`adsc.methods.resolve` makes them from a config).

Layers before the first pruning layer run exactly as unpatched. Decoder layers of
transformers checkpoint ``forward`` (not ``__call__``), so these hooks stay outside gradient
checkpointing and run once per step.
"""

from __future__ import annotations

import torch
from torch import nn

from ..adapters import CAUSAL, Adapter, unwrap
from ..config import CompressionConfig
from ..schedule import Schedule
from .selectors import Selector, StageInput
from .state import (
    SequenceState,
    StageTable,
    as_pattern,
    check_pattern,
    gather_slots,
    key_layout,
    scatter_back,
    shares_memory,
    stage_mask,
)
from .trace import Trace

STATE_ATTR = "_adsc_state"
_UNBUILT = object()  # a stage mask not built yet in this forward (None is a mask: no mask needed)


def cache_kwarg(kwargs: dict):
    """The KV cache a forward was given: transformers >= 5.24 passes it as ``cache``, older ones as
    ``past_key_values`` (still accepted until 5.40)."""
    cache = kwargs.get("cache")
    return kwargs.get("past_key_values") if cache is None else cache


def is_stage_cache(cache) -> bool:
    """An adsc StageCache (engine/cache.py, read off a class flag so the engine imports no transformers)."""
    return getattr(type(cache), "fixed_layer_capacities", False)


def _holds_per_layer_lengths(cache) -> bool:
    """True for caches whose layers may hold different numbers of tokens: DynamicCache (and
    subclasses) without sliding layers, which concatenate per layer, and adsc's StageCache."""
    from transformers import DynamicCache

    if is_stage_cache(cache):
        return True
    return isinstance(cache, DynamicCache) and not any(getattr(layer, "is_sliding", False) for layer in cache.layers)


def _unslide(cache) -> None:
    """Make the sliding-window layers of an empty DynamicCache full-length (``generate`` makes such a
    cache for models with local layers, e.g. Gemma 3). A sliding cache layer keeps the last
    ``sliding_window`` *slots*; in a compressed stage those are not the last positions, and the
    window is in original positions. A full layer plus the stage mask's window (and, before the
    first pruning layer, the model's own windowed mask) attends to exactly the same keys."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if isinstance(cache, DynamicCache) and not is_stage_cache(cache):
        for idx, layer in enumerate(cache.layers):
            if getattr(layer, "is_sliding", False):
                cache.layers[idx] = DynamicLayer()


def _holds_tokens(cache) -> bool:
    """Whether a prefill has filled ``cache``, read on the host: a StageCache's length is a device
    tensor (reading it would sync, and a compiled decode step would break its graph there)."""
    return not cache.awaiting_prefill if is_stage_cache(cache) else cache.get_seq_length() > 0


def _check_mask(mask, fixed: bool = False) -> None:
    if fixed and (isinstance(mask, dict) or torch.is_tensor(mask) and mask.dim() == 4):
        return  # generate builds 4-D masks for compileable caches; validity is read off them (_validity)
    if mask is not None and (not torch.is_tensor(mask) or mask.dim() != 2):
        got = f"a {mask.dim()}-D tensor" if torch.is_tensor(mask) else f"a {type(mask).__name__}"
        raise ValueError(
            f"adsc needs a 2-D attention_mask (batch, length), got {got}; custom 4-D masks and per-layer-type mask "
            "dicts are not supported (a dict comes from cache_implementation: drop it, or pass an adsc.StageCache)"
        )


def _validity(mask, first, q_len: int) -> torch.Tensor | None:
    """(B, q_len) validity of the tokens at cache slots ``first .. first + q_len - 1`` (an int or a
    0-d tensor) from any mask a forward gets: 2-D (1 = real token) or the 4-D / per-layer-type
    masks generate builds for a compileable cache, whose last query row sees every real key up to
    itself (bool: True = attend; float: 0 = attend). Pure tensor work; None when no mask is given."""
    if isinstance(mask, dict):
        mask = mask.get("full_attention", next(iter(mask.values()), None))
    if mask is None or mask.dim() == 2:
        return None if mask is None else mask[:, -q_len:].bool()
    row = mask[:, 0, -1]
    row = row if row.dtype == torch.bool else row == 0
    return row.index_select(1, torch.arange(q_len, device=row.device) + first)


class _Forward:
    """What one forward pass needs beyond the sequence state; built masks are reused per stage.

    ``positions_shared``: every stage layer keeps the model's rotary (cos, sin), as in a decode
    step, whose new tokens sit at the same original positions in every stage, unless the
    selector shifts them (:meth:`Selector.shifts_decode_positions`)."""

    def __init__(self, seq: SequenceState, prefill: bool, q_len: int, positions_shared: bool = False):
        self.seq, self.prefill, self.q_len, self.impl = seq, prefill, q_len, seq.attn_impl
        self.one_token_step = not prefill and q_len == 1
        # (stage, pattern id) -> mask; a one-token step starts from the masks the steps before it
        # kept (SequenceState.step_masks: built at the first such step, reused by every later one)
        self.masks: dict[tuple[int, int], object] = dict(seq.step_masks) if self.one_token_step else {}
        self.positions_shared = positions_shared
        self.positions: dict[tuple[int, str], tuple] = {}  # (stage, rotary kind) -> (cos, sin) of its slots
        self.before: dict[int, tuple] = {}  # stage -> (hidden, layer, kwargs) of the layer before it


class CompressionHandle:
    """Returned by :func:`adsc.compress`. ``remove()`` restores the original model exactly.

    ``schedule`` and ``selector`` are what runs; ``config`` is kept for reports. ``resolve``
    (config, num_layers) -> (schedule, selector) serves :meth:`set_config`.
    """

    def __init__(self, model: nn.Module, adapter: Adapter, config: CompressionConfig, schedule: Schedule,
                 selector: Selector, resolve=None):
        self.model, self.adapter = model, adapter
        self._base = unwrap(model)
        self.layers = adapter.decoder_layers(self._base)
        self.num_layers = len(self.layers)
        self._resolve = resolve
        # each layer's own attention pattern, which its stage mask keeps, and which rotary (cos, sin) it gets
        self._pattern_of_layer = [as_pattern(adapter.mask_pattern(self._base, i)) for i in range(self.num_layers)]
        self._rotary_of_layer = [adapter.rotary_kind(self._base, i) for i in range(self.num_layers)]
        self._pattern_by_layer = dict(zip(self.layers, self._pattern_of_layer))  # for the score-based selectors
        # a small int per distinct pattern: the stage masks are looked up by (stage, pattern id) on every
        # layer of every step, and hashing an int is cheaper than hashing a dataclass (found by
        # equality: a layer before the first stage may have any pattern, hashable or not)
        distinct = []
        for pattern in self._pattern_of_layer:
            distinct += [] if pattern in distinct else [pattern]
        self._pattern_id_of_layer = [distinct.index(p) for p in self._pattern_of_layer]
        # local layers whose window the stage masks apply: a sliding-window cache is then made full-length
        self._windowed = any(getattr(p, "window", None) is not None for p in self._pattern_of_layer)
        self.set_plan(config, schedule, selector)
        for idx in range(self.stage_layers[0] if self.stage_layers else self.num_layers, self.num_layers):
            check_pattern(self._pattern_of_layer[idx], idx)  # at compress(), not at the first forward
        self._forward: _Forward | None = None
        self.last_trace: Trace | None = None
        # first, so that an adapter refusing the model leaves nothing installed
        self._undo_adapter = adapter.attach(self._base)
        self._hooks, self._probe_hooks = [], []
        core = adapter.core(self._base)
        self._hooks.append(core.register_forward_pre_hook(self._on_core_start, with_kwargs=True))
        # on success only; then one that always runs (after it), to clear state left by a forward that raised
        self._hooks.append(core.register_forward_hook(self._on_core_end))
        self._hooks.append(core.register_forward_hook(self._on_core_exit, always_call=True))
        self._running = False
        for idx in range(self.stage_layers[0] if self.stage_layers else self.num_layers, self.num_layers):
            hook = self._make_layer_hook(idx)
            self._hooks.append(self.layers[idx].register_forward_pre_hook(hook, with_kwargs=True))
        self._install_probes()
        self._hooks.append(self.layers[-1].register_forward_hook(self._on_last_layer))
        setattr(self._base, "_adsc_handle", self)

    # ------------------------------------------------------------------ configuration
    def set_config(self, config: CompressionConfig) -> None:
        """Swap the compression setting in place (the curriculum uses this between phases).

        The pruning layers must stay the same: hooks are installed for them.
        """
        if self._resolve is None:
            raise ValueError("this handle was built without a resolver: use set_plan(config, schedule, selector)")
        self.set_plan(config, *self._resolve(config, self.num_layers))

    def set_plan(self, config: CompressionConfig, schedule: Schedule, selector: Selector) -> None:
        """Swap in a finished schedule and selector (same pruning layers as before)."""
        if schedule.num_layers != self.num_layers:
            raise ValueError(f"the schedule is for {schedule.num_layers} layers, the model has {self.num_layers}")
        if hasattr(self, "stage_layers") and schedule.stage_layers != self.stage_layers:
            raise ValueError("set_config cannot move pruning layers; remove() and compress() again")
        self.config, self.schedule = config, schedule
        self.stage_layers = schedule.stage_layers
        self.selector = selector
        self._stage_of_layer, self._mask_key_of_layer = {}, {}
        stage = -1
        for idx in range(self.num_layers):
            while stage + 1 < len(self.stage_layers) and self.stage_layers[stage + 1] <= idx:
                stage += 1
            self._stage_of_layer[idx] = stage
            self._mask_key_of_layer[idx] = (stage, self._pattern_id_of_layer[idx])

    @property
    def selector(self) -> Selector:
        return self._selector

    @selector.setter
    def selector(self, selector: Selector) -> None:
        self._selector = selector
        if getattr(self, "_hooks", None):  # attached (not removed): the new selector may read other layers
            self._install_probes()

    def remove(self) -> None:
        for hook in self._hooks + self._probe_hooks:
            hook.remove()
        self._hooks.clear()
        self._probe_hooks.clear()
        if self._undo_adapter is not None:
            self._undo_adapter()
            self._undo_adapter = None
        self._forward = None
        if getattr(self._base, "_adsc_handle", None) is self:
            delattr(self._base, "_adsc_handle")

    def prefill_stage(self) -> StageTable | None:
        """The stage whose slot layout the hidden states between decoder layers have right now: the
        latest stage a running prefill entered, None outside one (or before its first pruning layer).
        For adapters whose model adds to the hidden states between layers (Qwen3-VL's DeepStack)."""
        fwd = self._forward
        return fwd.seq.stages[-1] if fwd is not None and fwd.prefill and fwd.seq.stages else None

    # ------------------------------------------------------------------ core hooks
    def _attn_impl(self) -> str:
        return self.adapter.text_config(self._base)._attn_implementation or "eager"

    def _open(self, seq: SequenceState, prefill: bool, q_len: int) -> None:
        shared = not prefill and not self.selector.shifts_decode_positions(seq)
        self._forward = _Forward(seq, prefill, q_len, shared)

    def _on_core_start(self, module, args, kwargs):
        self._forward, self._running = None, True
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        cache = cache_kwarg(kwargs)
        if cache is not None and _holds_tokens(cache):
            if self.stage_layers:
                _check_mask(mask, is_stage_cache(cache))
                self._resume(cache, input_ids, kwargs.get("inputs_embeds"), mask)
        else:
            self._start(module, input_ids, mask, kwargs)
        return None

    def _start(self, module, input_ids, mask, kwargs):
        self._check_length(input_ids if input_ids is not None else kwargs.get("inputs_embeds"))
        if not self.stage_layers:
            return
        cache = cache_kwarg(kwargs)
        if cache is not None and self._windowed:
            _unslide(cache)
        if cache is not None and not _holds_per_layer_lengths(cache):  # checked once per prefill, not per decode step
            raise ValueError(
                f"adsc needs a DynamicCache or an adsc.StageCache: compressed layers cache fewer tokens than layer 0, "
                f"which a {type(cache).__name__} cannot hold; drop cache_implementation and pass DynamicCache(), or "
                "past_key_values=adsc.StageCache(model.config, max_new_tokens=N) for fixed shapes (torch.compile)"
            )
        fixed = is_stage_cache(cache)
        if fixed:
            cache.awaiting_prefill = False  # whatever follows (compressed or not) is a decode step
            cache.slots(0, input_ids.shape[1] if input_ids is not None else 0)  # a prompt too long for a reused cache
        _check_mask(mask, fixed)
        if input_ids is None:
            raise ValueError("adsc reads vision-token positions from input_ids: pass input_ids, not inputs_embeds")
        spans = self.adapter.vision_spans(self._base, input_ids, kwargs)
        if not any(spans):
            return  # text only: nothing to compress, run unpatched
        vision = torch.zeros_like(input_ids, dtype=torch.bool)
        for b, sample in enumerate(spans):
            for span in sample:  # grid tokens only: a span's extra tokens (newlines, separators) count as text
                vision[b, span.token_positions(vision.device)] = True
        valid = _validity(mask, 0, input_ids.shape[1])
        seq = SequenceState(torch.ones_like(vision) if valid is None else valid, vision, spans, self.stage_layers,
                            blocks=self.adapter.attention_blocks(self._base, input_ids, kwargs), attn_impl=self._attn_impl())
        if fixed:
            seq.start_fixed(input_ids.device, cache.engine_buffers)
        self._open(seq, True, input_ids.shape[1])

    def _check_length(self, tokens) -> None:
        """Refuse a prompt longer than the model's positions (refused, not warned: its output is unreliable
        and a long evaluation would otherwise finish with nothing said). The padded width is compared,
        which is the longest prompt of the batch; read on the host, no device sync."""
        limit = getattr(self.adapter.text_config(self._base), "max_position_embeddings", None)
        length = None if tokens is None else tokens.shape[1]
        if limit is not None and length is not None and length > limit:
            raise ValueError(
                f"a prompt of {length} tokens is longer than this model's max_position_embeddings ({limit}): positions "
                "past it were never trained and its output is unreliable; shorten the text or use fewer / smaller images"
            )

    def _resume(self, cache, input_ids, inputs_embeds, mask):
        seq: SequenceState | None = getattr(cache, STATE_ATTR, None)
        if seq is None:
            return  # the cache was filled without compression (or text only): stay unpatched
        new = input_ids if input_ids is not None else inputs_embeds
        batch, q_len = new.shape[:2]
        # Checked only for several new tokens (a new turn): an image is many tokens, and the check
        # reads the device, which a one-token decode step should not do (it stalls the GPU).
        if input_ids is not None and q_len > 1:
            vision_ids = torch.tensor(self.adapter.vision_token_ids(self._base), device=input_ids.device)
            if torch.isin(input_ids, vision_ids).any():
                raise ValueError("new images after the prefill cannot join a compressed cache; start a new cache")
        if batch != seq.batch:
            raise ValueError(f"the cache holds {seq.batch} sequences but {batch} arrived")
        if seq.decoded is not None:  # a StageCache: fixed shapes, no device read, nothing on the host changes
            seq.append_fixed(_validity(mask, cache.layers[0].cumulative_length, q_len), q_len)
            self._open(seq, False, q_len)
            return
        device = seq.input_valid.device
        if mask is None:
            new_valid, all_new_valid = torch.ones(batch, q_len, dtype=torch.bool, device=device), True
        else:
            new_valid = mask[:, -q_len:].bool().to(device)
            # one device read per step, before the first layer, and none once a stage holds padding
            all_new_valid = any(t.all_valid for t in seq.stages) and bool(new_valid.all())
        seq.append(new_valid, all_new_valid)
        self._open(seq, False, q_len)

    def _on_core_end(self, module, args, output):
        fwd, self._forward, self._running = self._forward, None, False
        if fwd is not None and fwd.prefill:
            if fwd.seq.decoded is not None and fwd.seq.stages:
                fwd.seq.pack_fixed()
            self.last_trace = Trace(fwd.seq, self.num_layers)
        return None

    def _on_core_exit(self, module, args, output):
        """Runs even when the forward raised: then no trace describes it, so ``last_trace`` is None."""
        if self._running:
            self._forward, self._running, self.last_trace = None, False, None
        return None

    # ------------------------------------------------------------------ layer hooks
    def _make_layer_hook(self, layer_idx: int):
        pattern, kind = self._pattern_of_layer[layer_idx], self._rotary_of_layer[layer_idx]

        def hook(module, args, kwargs):
            # runs on every layer of every decode step: kept to dictionary lookups there
            fwd = self._forward
            if fwd is None:
                return None
            stage, key = self._stage_of_layer[layer_idx], self._mask_key_of_layer[layer_idx]
            hidden = args[0] if args else kwargs["hidden_states"]
            if fwd.prefill and layer_idx == self.stage_layers[stage]:
                hidden = self._enter_stage(fwd, stage, hidden, module, kwargs)
            mask = fwd.masks.get(key, _UNBUILT)
            if mask is _UNBUILT:
                mask = fwd.masks[key] = self._stage_mask(fwd, stage, pattern, hidden, key)
            kwargs["attention_mask"] = mask
            if not fwd.positions_shared:
                positions = fwd.positions.get((stage, kind))
                if positions is None:
                    positions = fwd.positions[stage, kind] = self.selector.stage_positions(
                        fwd.seq, stage, kwargs.get("position_embeddings"), fwd.prefill, kind)
                kwargs["position_embeddings"] = positions
            kwargs["position_ids"] = None  # gapped positions would look like packed sequences to FA2
            if args:
                return (hidden, *args[1:]), kwargs
            kwargs["hidden_states"] = hidden
            return args, kwargs

        return hook

    def _stage_mask(self, fwd: _Forward, stage: int, pattern, hidden, key):
        """Stage ``stage``'s mask for layers of ``pattern`` (``key``: their ``fwd.masks`` key), on the
        device of the stage's first layer (model-parallel splits move hidden states)."""
        seq = fwd.seq
        table = seq.stages[stage]
        bias = table.key_bias()
        bias = None if bias is None else bias.to(hidden.device)
        end = seq.end(table)
        kv_valid = table.kv_valid.to(hidden.device)
        layout = None if pattern == CAUSAL else key_layout(seq, table, kv_valid.shape[1])
        head = fwd.prefill and seq.decoded is not None  # a prefill into a StageCache's empty buffers
        mask = stage_mask(kv_valid, hidden.shape[1], fwd.impl, hidden.dtype, bias,
                          all_valid=table.prompt_valid if head else table.all_valid, pattern=pattern,
                          end=None if end is None else end.to(hidden.device), layout=layout, fills_head=head)
        # Later one-token steps reuse a one-token mask that stays right: with a StageCache one that
        # is a view of the fixed key-validity buffer (it follows the steps' in-place writes); with a
        # DynamicCache no mask at all, which depends only on the host's all_valid (append() forgets
        # it when a padding token arrives). Not while compiling: the graph builds its own, and a
        # traced tensor must not outlive the trace.
        if fwd.one_token_step and not torch.compiler.is_compiling():
            if mask is None if seq.decoded is None else shares_memory(mask, table.kv_valid):
                seq.step_masks[key] = mask
        return mask

    def _install_probes(self) -> None:
        """Forward pre-hooks on the layer before each stage, for selectors that read it (FastV's
        attention): only for those, so that other methods' decode steps call no hook there.
        Installed after the layer hooks, so a probe on a stage layer sees that stage's inputs."""
        for hook in self._probe_hooks:
            hook.remove()
        self._probe_hooks = []
        if self.selector.reads_layer_before:
            for idx in sorted({s - 1 for s in self.stage_layers if s >= 1}):
                self._probe_hooks.append(self.layers[idx].register_forward_pre_hook(self._make_probe(idx), with_kwargs=True))

    def _make_probe(self, layer_idx: int):
        stages = [s for s, first in enumerate(self.stage_layers) if first - 1 == layer_idx]

        def probe(module, args, kwargs):
            fwd = self._forward
            if fwd is None or not fwd.prefill or not self.selector.reads_layer_before:
                return None
            hidden = args[0] if args else kwargs["hidden_states"]
            for stage in stages:
                fwd.before[stage] = (hidden, module, dict(kwargs))
            return None

        return probe

    def _enter_stage(self, fwd: _Forward, stage: int, hidden, layer, kwargs) -> torch.Tensor:
        seq = fwd.seq
        if len(seq.stages) == stage:  # a gradient-checkpointing replay finds the table already built
            previous = seq.stages[stage - 1] if stage else None
            step = StageInput(stage, hidden, previous, layer, kwargs, fwd.before.pop(stage, None), self.adapter,
                              self._pattern_by_layer)
            keep = seq.input_valid & ~seq.vision | self.selector.keep_vision(seq, step)
            if previous is not None:
                keep &= previous.valid.new_zeros(keep.shape).scatter(1, previous.orig, previous.valid)
            seq.stages.append(StageTable.from_keep(keep, previous))
            cache = cache_kwarg(kwargs)
            if seq.decoded is not None:
                first_layer = self.stage_layers[stage]
                slots = cache.slots(first_layer, seq.stages[-1].width)
                seq.stages[-1].reserve(slots)
            if cache is not None and stage == 0:
                setattr(cache, STATE_ATTR, seq)
        return self.selector.stage_hidden(seq, stage, hidden, gather_slots(hidden, seq.stages[stage].src_slot))

    def _on_last_layer(self, module, args, output):
        fwd = self._forward
        if fwd is None or not fwd.prefill or not fwd.seq.stages:
            return None
        hidden = output[0] if isinstance(output, tuple) else output
        full = scatter_back(hidden, fwd.seq.stages[-1], fwd.seq.length)
        return (full, *output[1:]) if isinstance(output, tuple) else full
