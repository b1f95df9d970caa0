"""Reading back what a compressed forward did: tokens per layer, positions, KV-cache lengths."""

from __future__ import annotations

import torch

from .state import SequenceState


class Trace:
    """Per layer and per sample, which original tokens were processed (after ``model(...)``).

    Positions are indices into the prefill sequence (``input_ids`` columns); padding is never
    counted. The trace follows the sequence through ``generate``: ``kv_lengths`` includes the
    tokens decoded so far.
    """

    def __init__(self, seq: SequenceState, num_layers: int):
        self.seq, self.num_layers = seq, num_layers
        self._stage_of_layer = [sum(1 for s in seq.stage_layers if s <= layer) - 1 for layer in range(num_layers)]

    @property
    def batch_size(self) -> int:
        return self.seq.batch

    def _kept(self, layer: int) -> torch.Tensor:
        stage = self._stage_of_layer[layer]
        if stage < 0 or stage >= len(self.seq.stages):
            return self.seq.input_valid
        table = self.seq.stages[stage]
        return table.valid.new_zeros(self.seq.input_valid.shape).scatter(1, table.orig, table.valid)

    def positions(self, layer: int, sample: int) -> torch.Tensor:
        """Original positions of the tokens decoder layer ``layer`` processed for ``sample``."""
        return self._kept(layer)[sample].nonzero().flatten()

    def vision_positions(self, layer: int, sample: int) -> torch.Tensor:
        return (self._kept(layer) & self.seq.vision)[sample].nonzero().flatten()

    def vision_tokens(self, sample: int) -> list[int]:
        """Vision tokens each layer processed for ``sample``, layer 0 first."""
        return [int((self._kept(layer) & self.seq.vision)[sample].sum()) for layer in range(self.num_layers)]

    def kv_lengths(self, sample: int) -> list[int]:
        """Keys/values each layer holds for ``sample``: its prompt tokens plus decoded tokens (a
        sliding-window DynamicCache layer keeps the last ``window - 1`` of them: :func:`cache_lengths`
        reads what a cache physically holds)."""
        return [int(self._kept(layer)[sample].sum()) + self.seq.decoded_tokens for layer in range(self.num_layers)]

    def table(self, sample: int = 0) -> str:
        rows = ["layer  vision_tokens  kv_cache_len"]
        for layer, (v, kv) in enumerate(zip(self.vision_tokens(sample), self.kv_lengths(sample))):
            rows.append(f"{layer:>5}  {v:>13}  {kv:>12}")
        return "\n".join(rows)


def cache_lengths(cache) -> list[int]:
    """Physical per-layer lengths of a transformers ``DynamicCache`` (padding slots included)."""
    return [int(layer.keys.shape[-2]) if getattr(layer, "keys", None) is not None else 0 for layer in cache.layers]


def cache_bytes(cache) -> int:
    """Bytes held by the keys and values of a ``DynamicCache``."""
    total = 0
    for layer in cache.layers:
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if t is not None and t.numel():
                total += t.numel() * t.element_size()
    return total
