"""A static KV cache whose layers hold different, fixed numbers of tokens (``StageCache``).

Compressed layers cache fewer tokens than layer 0, so transformers' ``StaticCache`` (one length
for every layer) cannot hold them. ``StageCache`` is a list of transformers' own ``StaticLayer``
objects, each sized at its first write, the prefill: the tokens that layer receives (its
stage's kept prompt tokens, padding slots included) plus room for the decode steps. From then on
every tensor has a fixed shape and address, which is what ``torch.compile`` and CUDA graphs need:
a decode step writes one slot per layer in place and reads the whole buffer under a mask.

Sliding-window layers (Gemma 3's local layers, a windowed Mistral) are full-length layers here
too: the stage masks apply the window in original positions, as transformers' masks do for a
full-length cache. So a StageCache's local layers hold every kept prompt token plus the room,
where a DynamicCache's keep ``window - 1`` (``engine.hooks.sliding_tail``): with prompts far past
the window it holds more than transformers' own StaticCache (ring buffers of the window) would.

``room`` is the number of decode steps' tokens it holds; ``StageCache(config, max_new_tokens=N)``
leaves ``N - 1``: what ``generate(max_new_tokens=N)`` feeds back (the last token never is), the
same rule transformers uses to size its StaticCache.

``reset()`` empties it for the next prefill of the same shape (a benchmark's next round, an
evaluation's next batch of equal width): every buffer keeps its address, the engine's included,
so a compiled decode step is not compiled again (a new cache object would be: its buffers are
new static addresses).
"""

from __future__ import annotations

import torch
from transformers import Cache, StaticLayer


class StageCacheTooSmall(ValueError):
    """A reused StageCache's layer cannot hold this prefill and its decode room: make a new one."""


class StageLayer(StaticLayer):
    """A ``StaticLayer`` sized at its first write: ``prefill tokens + room`` slots."""

    def __init__(self, room: int, multiple: int = 1):
        super().__init__(max_cache_len=0)
        self.room, self.multiple = room, multiple

    def size_for(self, tokens: int) -> int:
        """Slots for a first write of ``tokens``: rounded up to ``multiple``, then the decode room."""
        return -(-tokens // self.multiple) * self.multiple + self.room

    def lazy_initialization(self, key_states, value_states) -> None:
        self.max_cache_len = self.size_for(key_states.shape[-2])
        super().lazy_initialization(key_states, value_states)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        # asked before the first write (transformers builds layer 0's prefill mask first): the
        # prefill is that write, so its length sizes the layer
        return (self.max_cache_len if self.is_initialized else self.size_for(query_length)), 0


class StageCache(Cache):
    """Per-layer fixed-capacity KV cache for compressed models (and uncompressed ones alike).

    Pass it to ``generate(cache=StageCache(model.config, max_new_tokens=N), max_new_tokens=N)``
    or to forward calls. It is compileable: ``generate`` with a ``compile_config`` compiles the decode
    step. After ``reset()`` it takes a prefill that fits its layers again.

    ``slot_multiple``: each layer's prompt slots rounded up to a multiple of it (then the room), so
    a reused cache takes later prompts whose stages keep a few more tokens (an evaluation's batches
    of one padded shape); costs up to ``slot_multiple - 1`` unused slots a layer, which a decode step
    reads (masked) like the rest of the buffer.
    """

    fixed_layer_capacities = True  # what the engine checks (is_stage_cache), without importing transformers

    def __init__(self, config=None, max_new_tokens: int | None = None, num_layers: int | None = None,
                 room: int | None = None, slot_multiple: int = 1):
        if (max_new_tokens is None) == (room is None):
            raise ValueError("StageCache: give max_new_tokens (generate's) or room (decode tokens to hold), not both")
        room = max(max_new_tokens - 1, 0) if room is None else room
        if room < 0:
            raise ValueError(f"StageCache: room must be >= 0, got {room}")
        if num_layers is None:
            if config is None:
                raise ValueError("StageCache: give the model's config or num_layers")
            text = config.get_text_config(decoder=True)
            num_layers = text.num_hidden_layers
        self.room = room
        self.decode_tokens = 0  # counted on the host by eager steps (update), so overflow is a clear error
        # layer 0 written since construction or reset(): on the host, so the engine tells prefill from
        # decode without a device read (a reset layer keeps its buffers: is_initialized cannot tell)
        self.prefilled = False
        self.engine_buffers: dict = {}  # the engine's fixed-address buffers, reused after reset()
        if isinstance(slot_multiple, bool) or not isinstance(slot_multiple, int) or slot_multiple < 1:
            raise ValueError(f"StageCache: slot_multiple must be a whole number >= 1, got {slot_multiple!r}")
        super().__init__(layers=[StageLayer(room, slot_multiple) for _ in range(num_layers)])

    def reset(self) -> None:
        super().reset()
        self.decode_tokens, self.prefilled = 0, False

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        if layer_idx == 0 and not torch.compiler.is_compiling():
            if self.prefilled:
                self.check_room(key_states.shape[-2])
                self.decode_tokens += key_states.shape[-2]
            self.prefilled = True
        return super().update(key_states, value_states, layer_idx, *args, **kwargs)

    def check_room(self, tokens: int) -> None:
        """Refuse a step of ``tokens`` tokens that would not fit after the prefill (its index write
        would fail deep inside, an out-of-bounds index). Eager steps only (the engine asks before its
        own writes, layer 0's update counts): a compiled step must not read a changing host int, so
        there the room is the caller's word."""
        if self.decode_tokens + tokens > self.room:
            fix = ("a new prompt into a used StageCache needs cache.reset() first" if tokens > 1 else
                   "make it with StageCache(model.config, max_new_tokens=N) for N at least generate's max_new_tokens")
            raise ValueError(
                f"this StageCache has room for {self.room} decode-step tokens after its prefill (max_new_tokens="
                f"{self.room + 1}) and {self.decode_tokens} are used: {tokens} more do not fit; {fix}"
            )

    def slots(self, layer: int, tokens: int) -> int:
        """Key slots layer ``layer`` has (or will have) for a prefill of ``tokens`` tokens there."""
        cache_layer = self.layers[layer]
        if not cache_layer.is_initialized:
            return cache_layer.size_for(tokens)
        if tokens + self.room > cache_layer.max_cache_len:  # the decode steps need their room after the prompt
            raise StageCacheTooSmall(
                f"this StageCache's layer {layer} was sized by an earlier prefill to {cache_layer.max_cache_len} slots, "
                f"fewer than the {tokens} tokens of this one + {self.room} decode slots: make a new StageCache for a "
                "longer prompt (or one whose stages keep more tokens)"
            )
        return cache_layer.max_cache_len

    def mark_static(self, layer: int) -> None:
        """Mark layer ``layer``'s buffers as fixed addresses (mutated in place by decode steps, which
        CUDA graphs need). ``StaticLayer`` does so when it allocates them, except while compiling: a
        compiled prefill (:func:`adsc.compile_prefill`) allocates them inside its graph and calls
        this after it."""
        cache_layer = self.layers[layer]
        for tensor in (cache_layer.keys, cache_layer.values, cache_layer.cumulative_length):
            torch._dynamo.mark_static_address(tensor)

    def capacities(self) -> list[int]:
        """Slots of every layer (0 before the prefill)."""
        return [layer.max_cache_len if layer.is_initialized else 0 for layer in self.layers]
