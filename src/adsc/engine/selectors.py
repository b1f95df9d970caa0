"""Selectors decide, at each stage, which vision tokens stay. The engine does the rest.

A selector sees the stage's input (hidden states in the previous stage's slot layout, the
decoder layer about to run and its keyword arguments) and returns a (B, T) bool mask over
*original* positions of the vision tokens to keep. Score-free selectors ignore the hidden
states; score-based baselines read them. The selectors themselves live with their methods
(:mod:`adsc.methods`); this module holds only what the engine calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..adapters import CAUSAL, Adapter
from .state import SequenceState, StageTable, gather_positions


@dataclass
class StageInput:
    stage: int
    hidden: torch.Tensor  # (B, T_prev, d) in the previous stage's slot layout
    previous: StageTable | None  # None: the full prefill sequence
    layer: nn.Module
    layer_kwargs: dict
    # (hidden, layer, kwargs) of the decoder layer just before the stage layer, recorded during
    # prefill only for selectors with ``reads_layer_before`` (FastV reads that layer's attention)
    before: tuple | None = None
    adapter: Adapter | None = None  # the architecture's facts (how its layers form q and k, for scores)
    patterns: dict | None = None  # decoder layer module -> its AttentionPattern (scores keep the layer's own)

    def pattern_of(self, layer: nn.Module):
        """The attention pattern of ``layer`` (causal when the engine gave none)."""
        return (self.patterns or {}).get(layer, CAUSAL)


class Selector:
    reads_layer_before: bool = False

    def keep_vision(self, seq: SequenceState, step: StageInput) -> torch.Tensor:
        raise NotImplementedError

    def stage_hidden(self, seq: SequenceState, stage: int, hidden: torch.Tensor, gathered: torch.Tensor) -> torch.Tensor:
        """Hidden states of the new stage's slots; ``gathered`` holds the survivors unchanged.

        Merging selectors (ToMe) override this; it must be a pure function of what
        ``keep_vision`` stored, since a gradient-checkpointing replay calls it again.
        """
        return gathered

    def stage_positions(self, seq: SequenceState, stage: int, position_embeddings, prefill: bool, kind: str = ""):
        """Rotary (cos, sin) of the stage's slots (prefill) or of the new tokens (decode).

        Asked once per stage and rotary ``kind`` (the adapter's ``rotary_kind``: layers of one kind
        get the same (cos, sin) from the model, e.g. Gemma 3's local and global RoPE bases differ);
        a selector that keeps per-stage rotary state keys it by kind too."""
        return gather_positions(position_embeddings, seq.stages[stage].orig) if prefill else position_embeddings

    def shifts_decode_positions(self, seq: SequenceState) -> bool:
        """Whether :meth:`stage_positions` may give a decode step's new tokens other (cos, sin) than the
        model's: only then is it asked per stage in decode (the engine's default keeps original
        positions, so the model's (cos, sin) serve every stage). A selector that overrides
        ``stage_positions`` is asked unless it overrides this too."""
        return type(self).stage_positions is not Selector.stage_positions
