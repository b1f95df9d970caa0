"""Measured FLOPs and KV bytes of a real forward / generate, to check the analytical model.

``torch.utils.flop_counter.FlopCounterMode`` knows the CUDA SDPA kernels but not the CPU one
(``aten._scaled_dot_product_flash_attention_for_cpu``), which it silently counts as 0; we
register it (and its backward and the "overrideable" variant) with a formula that also allows
grouped-query attention, where keys have fewer heads than queries. Like the built-in formula
it counts the full q x kv rectangle whatever the mask.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten


def _sdpa_forward(query, key, value, *args, **kwargs) -> int:
    b, h, sq, d = query.shape
    sk, dv = key.shape[-2], value.shape[-1]
    return 2 * b * h * sq * sk * d + 2 * b * h * sq * sk * dv  # scores, then weights @ values


def _sdpa_backward(grad_out, query, key, value, *args, **kwargs) -> int:
    # grad wrt scores (dO V^T), values (P^T dO), queries (dS K), keys (dS^T Q): 2x the forward's work
    return 2 * _sdpa_forward(query, key, value)


def _shapes(fn):
    """FlopCounterMode calls formulas with shapes (``out_shape=`` as keyword); adapt to tensors' shapes."""

    def formula(*args, out_shape=None, **kwargs):
        class _S:  # a stand-in with only .shape, because formulas receive shapes, not tensors
            def __init__(self, shape):
                self.shape = tuple(shape)

        return fn(*[_S(a) if isinstance(a, (tuple, list, torch.Size)) else a for a in args])

    return formula


CPU_SDPA_MAPPING = {
    aten._scaled_dot_product_flash_attention_for_cpu: _shapes(_sdpa_forward),
    aten._scaled_dot_product_fused_attention_overrideable: _shapes(_sdpa_forward),
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _shapes(_sdpa_backward),
}


def counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=dict(CPU_SDPA_MAPPING))


def count_flops(fn, *args, **kwargs) -> tuple[int, dict[str, int], object]:
    """Run ``fn`` under a FLOP counter: (total FLOPs, FLOPs per aten op, fn's result)."""
    mode = counter()
    with mode:
        result = fn(*args, **kwargs)
    per_op = {str(op): int(n) for op, n in mode.get_flop_counts().get("Global", {}).items()}
    return int(mode.get_total_flops()), per_op, result


def text_tokens(input_ids: torch.Tensor, image_token_id: int) -> int:
    """Prompt tokens of sample 0 that are not image tokens (what ``account`` calls text tokens)."""
    return int((input_ids[0] != image_token_id).sum())
