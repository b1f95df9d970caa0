"""The hook engine: attaches to a loaded model without touching its code or parameter names.

What :class:`CompressionHandle` installs:

1. a step before the multimodal core's forward (e.g. ``LlavaModel``'s): reads ``input_ids``,
   finds the vision tokens, and opens a :class:`SequenceState` (prefill) or resumes the one
   stored on the KV cache (decode); one after it (the trace) and one when it raises;
2. on every decoder layer from the first pruning layer on, a step before the layer's forward (a
   :class:`~.forward_calls.ForwardCall`, not a hook: a hook puts the layer on ``nn.Module``'s slow call
   path, which a decode step pays on every layer): at a stage's first layer it gathers the kept
   tokens out of the hidden states; on every such layer it swaps in the stage's attention mask
   and the rotary (cos, sin) of the kept tokens' *original* positions;
3. after the last decoder layer: scatters the survivors back to their original positions so
   logits and labels keep their usual (B, T) shape.

The handle runs a finished :class:`~adsc.schedule.Schedule` and :class:`Selector`; it never asks
which method they came from (:func:`adsc.methods.resolve` makes them from a config).

Layers before the first pruning layer run exactly as unpatched. transformers checkpoints a
decoder layer's class ``forward`` (not ``__call__`` nor an instance ``forward``), so the layer
steps stay outside gradient checkpointing and run once per step.
"""

from __future__ import annotations

import torch
from torch import nn

from ..adapters import CAUSAL, Adapter, unwrap
from ..config import CompressionConfig
from ..schedule import Schedule
from .forward_calls import ForwardCall
from .selectors import Selector, StageInput
from .state import (
    FIXED_END,
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


def _holds_per_layer_lengths(cache, windows: list) -> bool:
    """True for caches whose layers may hold different numbers of tokens: adsc's StageCache, and a
    DynamicCache (or subclass), which concatenates per layer, if its sliding layers are
    transformers' ``DynamicSlidingWindowLayer`` on layers whose attention the engine windows by at
    most the layer's ``sliding_window`` (``windows``: each layer's window, None for none)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicSlidingWindowLayer

    if is_stage_cache(cache):
        return True
    if not isinstance(cache, DynamicCache):
        return False
    for idx, layer in enumerate(cache.layers):
        if getattr(layer, "is_sliding", False):
            window = windows[idx] if idx < len(windows) else None
            if not isinstance(layer, DynamicSlidingWindowLayer) or window is None or layer.sliding_window < window:
                return False
    return True


def sliding_tail(cache, layer_idx: int, q_len: int) -> int | None:
    """How many of a stage's last key slots the cache layer ``layer_idx`` gives a forward's
    attention, for a transformers ``DynamicSlidingWindowLayer`` (None: every slot). Such a layer
    keeps the last ``sliding_window - 1`` *slots* and returns them with the ``q_len`` new ones. In a
    compressed stage those slots reach further back than as many positions, so they hold every kept
    key the window lets a query see (slots are in original order), and the stage mask's window, in
    original positions, masks the older ones: the same keys as a full-length layer, at most
    ``sliding_window - 1`` cached (tests/core/test_gemma3.py). Read on the host, before the layer's
    update: the cached slots' count is a shape."""
    layers = getattr(cache, "layers", None)
    layer = layers[layer_idx] if layers is not None and layer_idx < len(layers) else None
    if layer is None or not getattr(layer, "is_sliding", False) or is_stage_cache(cache):
        return None
    cached = layer.keys.shape[-2] if layer.is_initialized else 0
    return min(cached, layer.sliding_window - 1) + q_len


def _holds_tokens(cache) -> bool:
    """Whether a prefill has filled ``cache``, read on the host: a StageCache's length is a device
    tensor (reading it would sync, and a compiled decode step would break its graph there)."""
    return cache.prefilled if is_stage_cache(cache) else cache.get_seq_length() > 0


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

    def __init__(self, seq: SequenceState, prefill: bool, q_len: int, positions_shared: bool = False, cache=None):
        self.seq, self.prefill, self.q_len, self.impl, self.cache = seq, prefill, q_len, seq.attn_impl, cache
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
        # each layer's window, which its stage mask applies: transformers' sliding cache layers serve those
        self._windows = [getattr(p, "window", None) for p in self._pattern_of_layer]
        self.set_plan(config, schedule, selector)
        for idx in range(self.stage_layers[0] if self.stage_layers else self.num_layers, self.num_layers):
            check_pattern(self._pattern_of_layer[idx], idx)  # at compress(), not at the first forward
        self._forward: _Forward | None = None
        self.last_trace: Trace | None = None
        # first, so that an adapter refusing the model leaves nothing installed
        self._undo_adapter = adapter.attach(self._base)
        self._attached, self._calls = True, {}
        self._core = adapter.core(self._base)
        core_call = ForwardCall.of(self._core)
        core_call.before, core_call.after, core_call.failed = self._on_core_start, self._on_core_end, self._on_core_failed
        self._install_layer_steps()
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
        if getattr(self, "_attached", False):  # attached (not removed): the new selector may read other layers
            self._install_layer_steps()

    def remove(self) -> None:
        if self._attached:
            core_call = ForwardCall.find(self._core)
            if core_call is not None:
                core_call.before = core_call.after = core_call.failed = None
                core_call.release()
            self._clear_layer_steps()
            self._attached = False
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

    # ------------------------------------------------------------------ the core's steps
    def _attn_impl(self) -> str:
        return self.adapter.text_config(self._base)._attn_implementation or "eager"

    def _open(self, seq: SequenceState, prefill: bool, q_len: int, cache) -> None:
        shared = not prefill and seq.decode_positions_shared  # decided at the end of the prefill
        self._forward = _Forward(seq, prefill, q_len, shared, cache)

    def _on_core_start(self, args, kwargs):
        self._forward = None
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        cache = cache_kwarg(kwargs)
        if cache is not None and _holds_tokens(cache):
            if is_stage_cache(cache) and not torch.compiler.is_compiling():
                tokens = input_ids if input_ids is not None else kwargs.get("inputs_embeds")
                cache.check_room(tokens.shape[1])  # before the engine's own writes
            if self.stage_layers:
                _check_mask(mask, is_stage_cache(cache))
                self._resume(cache, input_ids, kwargs.get("inputs_embeds"), mask)
        else:
            self._start(input_ids, mask, kwargs)
        return args, kwargs

    def _start(self, input_ids, mask, kwargs):
        self._check_length(input_ids if input_ids is not None else kwargs.get("inputs_embeds"))
        if not self.stage_layers:
            return
        cache = cache_kwarg(kwargs)
        if cache is not None and not _holds_per_layer_lengths(cache, self._windows):  # once per prefill, not per step
            raise ValueError(
                f"adsc needs a DynamicCache or an adsc.StageCache: compressed layers cache fewer tokens than layer 0, "
                f"which a {type(cache).__name__} cannot hold (nor sliding cache layers other than transformers' "
                "DynamicSlidingWindowLayer on the model's windowed layers); drop cache_implementation and pass "
                "generate(..., cache=DynamicCache(config=model.config)), or cache=adsc.StageCache(model.config, "
                "max_new_tokens=N) for fixed shapes (torch.compile)"
            )
        fixed = is_stage_cache(cache)
        if fixed:
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
        self._open(seq, True, input_ids.shape[1], cache)

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
            self._open(seq, False, q_len, cache)
            return
        if mask is None:
            new_valid, all_new_valid = None, True
        else:
            new_valid = mask[:, -q_len:].bool().to(seq.input_valid.device)
            # one device read per step, before the first layer, and none once a stage holds padding
            all_new_valid = any(t.all_valid for t in seq.stages) and bool(new_valid.all())
        seq.append(new_valid, all_new_valid, q_len)
        self._open(seq, False, q_len, cache)

    def _on_core_end(self, output):
        fwd, self._forward = self._forward, None
        if fwd is not None and fwd.prefill:
            # asked once, when the prefill has said all it will (a compiled decode step must not
            # see it change: that would recompile it)
            fwd.seq.decode_positions_shared = not self.selector.shifts_decode_positions(fwd.seq)
            if fwd.seq.decoded is not None and fwd.seq.stages:
                fwd.seq.pack_fixed()
            self.last_trace = Trace(fwd.seq, self.num_layers)
        return output

    def _on_core_failed(self) -> None:
        """The forward raised (the engine's checks included): no trace describes it."""
        self._forward, self.last_trace = None, None

    # ------------------------------------------------------------------ layer steps
    def _install_layer_steps(self) -> None:
        """The step before every layer from the first pruning layer on, the probe before the layer
        before each stage for selectors that read it (FastV's attention: only for those, so that
        other methods' decode steps do nothing there), and the scatter after the last layer."""
        self._clear_layer_steps()
        first = self.stage_layers[0] if self.stage_layers else self.num_layers
        probed = {s - 1 for s in self.stage_layers if s >= 1} if self.selector.reads_layer_before else set()
        for idx in sorted(set(range(first, self.num_layers)) | probed | {self.num_layers - 1}):
            step = self._make_layer_step(idx) if idx >= first else None
            probe = self._make_probe(idx) if idx in probed else None
            call = self._calls[idx] = ForwardCall.of(self.layers[idx])
            call.before = step if probe is None else self._chain(step, probe)
            call.after = self._on_last_layer if idx == self.num_layers - 1 else None

    def _clear_layer_steps(self) -> None:
        for call in self._calls.values():
            call.before = call.after = None
            call.release()
        self._calls = {}

    @staticmethod
    def _chain(step, probe):
        """A stage layer that is also the layer before a later stage: the probe sees what the step
        made (that stage's kept tokens and mask)."""
        def before(args, kwargs):
            if step is not None:
                args, kwargs = step(args, kwargs)
            probe(args, kwargs)
            return args, kwargs

        return before

    def _make_layer_step(self, layer_idx: int):
        pattern, kind = self._pattern_of_layer[layer_idx], self._rotary_of_layer[layer_idx]
        stage, key, module = self._stage_of_layer[layer_idx], self._mask_key_of_layer[layer_idx], self.layers[layer_idx]
        enters = stage >= 0 and layer_idx == self.stage_layers[stage]

        def step(args, kwargs):
            # runs on every layer of every decode step: there, two dictionary lookups and two writes
            fwd = self._forward
            if fwd is None:
                return args, kwargs
            if enters and fwd.prefill:
                hidden = self._enter_stage(fwd, stage, args[0] if args else kwargs["hidden_states"], module, kwargs)
                if args:
                    args = (hidden, *args[1:])
                else:
                    kwargs["hidden_states"] = hidden
            mask = fwd.masks.get(key, _UNBUILT)
            if mask is _UNBUILT:
                hidden = args[0] if args else kwargs["hidden_states"]
                mask = fwd.masks[key] = self._stage_mask(fwd, stage, pattern, hidden, key, layer_idx)
            kwargs["attention_mask"] = mask
            if not fwd.positions_shared:
                positions = fwd.positions.get((stage, kind))
                if positions is None:
                    positions = fwd.positions[stage, kind] = self.selector.stage_positions(
                        fwd.seq, stage, kwargs.get("position_embeddings"), fwd.prefill, kind)
                kwargs["position_embeddings"] = positions
            kwargs["position_ids"] = None  # gapped positions would look like packed sequences to FA2
            return args, kwargs

        return step

    def _stage_mask(self, fwd: _Forward, stage: int, pattern, hidden, key, layer_idx: int):
        """Stage ``stage``'s mask for layers of ``pattern`` (``key``: their ``fwd.masks`` key), on the
        device of the stage's first layer of that pattern, ``layer_idx`` (model-parallel splits move
        hidden states); over the key slots its cache layer gives attention (a sliding layer: the last)."""
        seq = fwd.seq
        table = seq.stages[stage]
        bias = table.key_bias()
        bias = None if bias is None else bias.to(hidden.device)
        if fwd.one_token_step and seq.decoded is not None and pattern == CAUSAL:
            # stage_mask's one-token path into a fixed buffer needs no end; computing it reads the
            # stage's width, which a compiled step would guard on: it would recompile for every batch
            # whose stages keep other counts (a padded batch's widest sample)
            end = FIXED_END
        else:
            end = seq.end(table)
        kv_valid = table.kv_valid.to(hidden.device)
        layout = None if pattern == CAUSAL else key_layout(seq, table, kv_valid.shape[1])
        tail = sliding_tail(fwd.cache, layer_idx, hidden.shape[1])
        if tail is not None and tail < kv_valid.shape[1]:
            kv_valid, bias = kv_valid[:, -tail:], None if bias is None else bias[:, -tail:]
            layout = None if layout is None else tuple(None if t is None else t[:, -tail:] for t in layout)
        head = fwd.prefill and seq.decoded is not None  # a prefill into a StageCache's empty buffers
        mask = stage_mask(kv_valid, hidden.shape[1], fwd.impl, hidden.dtype, bias,
                          all_valid=table.prompt_valid if head else table.all_valid, pattern=pattern,
                          end=end if end is None or end is FIXED_END else end.to(hidden.device), layout=layout,
                          fills_head=head)
        # Later one-token steps reuse a one-token mask that stays right: with a StageCache one that
        # is a view of the fixed key-validity buffer (it follows the steps' in-place writes); with a
        # DynamicCache no mask at all, which depends only on the host's all_valid (append() forgets
        # it when a padding token arrives). Not while compiling: the graph builds its own, and a
        # traced tensor must not outlive the trace.
        if fwd.one_token_step and not torch.compiler.is_compiling():
            if mask is None if seq.decoded is None else shares_memory(mask, table.kv_valid):
                seq.step_masks[key] = mask
        return mask

    def _make_probe(self, layer_idx: int):
        stages = [s for s, first in enumerate(self.stage_layers) if first - 1 == layer_idx]
        module = self.layers[layer_idx]

        def probe(args, kwargs):
            fwd = self._forward
            if fwd is None or not fwd.prefill:
                return
            hidden = args[0] if args else kwargs["hidden_states"]
            for stage in stages:
                fwd.before[stage] = (hidden, module, dict(kwargs))

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

    def _on_last_layer(self, output):
        fwd = self._forward
        if fwd is None or not fwd.prefill or not fwd.seq.stages:
            return output
        hidden = output[0] if isinstance(output, tuple) else output
        full = scatter_back(hidden, fwd.seq.stages[-1], fwd.seq.length)
        return (full, *output[1:]) if isinstance(output, tuple) else full
