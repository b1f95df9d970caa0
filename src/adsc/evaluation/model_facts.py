"""What the evaluated model is: its vision tokens per image, its identity, its numerics.

These go into the prediction files' fingerprint and ``results.json``: two runs' predictions
are mixed only when they come from the same weights, config, dtype and attention kernel.
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import torch

from ..adapters import adapter_for_config

PAPER_VISION_TOKENS = 576  # LLaVA-1.5's 24 x 24 patch grid: what a budget means for other models
# Config keys that say where or how a model was loaded, not what it is.
_VOLATILE = {"_name_or_path", "name_or_path", "_commit_hash", "transformers_version", "torch_dtype", "dtype",
             "_attn_implementation", "_attn_implementation_autoset", "_attn_implementation_internal"}
_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def reference_vision_tokens(config) -> tuple[int, bool]:
    """(vision tokens per image the budget refers to, whether every image has exactly that many).

    The adapter's rule, the one training uses (LLaVA: its patch grid; Qwen2-VL: 576, its
    images differ), read from the config alone, before the model is loaded; the paper's 576 for a
    model without an adapter.
    """
    adapter = adapter_for_config(config)
    if adapter is None:
        return PAPER_VISION_TOKENS, False
    return adapter.reference_vision_tokens(SimpleNamespace(config=config)), adapter.fixed_grid


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in _VOLATILE}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    return value


def config_digest(config) -> str:
    text = json.dumps(_stable(config.to_dict()), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@torch.no_grad()
def weights_digest(model) -> str:
    """A digest of the parameters as loaded, the same on every device.

    Per tensor: name, shape, dtype, the exact integer sum of every element's bit pattern (an
    integer sum does not depend on the reduction order, so CPU and GPU agree) and the bytes of
    ~1024 elements spread over it. One pass over the weights, on their device: no file hashing.
    """
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        if p.device.type == "meta":
            continue
        flat = p.detach().reshape(-1)
        bits = flat.view(_BITS[flat.element_size()])
        total = int(bits.sum(dtype=torch.int64)) if bits.numel() else 0
        sample = bits[:: max(1, bits.numel() // 1024)].cpu().numpy().tobytes()
        h.update(f"{name}|{tuple(p.shape)}|{p.dtype}|{total}|".encode())
        h.update(sample)
    return h.hexdigest()[:20]


def model_identity(model) -> dict:
    """What the model is (not where it was read from): config and weights digests.

    A relative and an absolute path to one model agree; new weights at the same path do not.
    The hub revision, when transformers resolved one, is recorded alongside (not compared).
    """
    return {"config": config_digest(model.config), "weights": weights_digest(model)}


def numerics(model) -> dict:
    """Settings that change greedy predictions whatever the device: dtype and attention kernel."""
    dtype = getattr(model, "dtype", None)
    return {"dtype": str(dtype).replace("torch.", "") if dtype is not None else None,
            "attn_implementation": getattr(model.config, "_attn_implementation", None)}


def revision(model) -> str | None:
    return getattr(model.config, "_commit_hash", None)
