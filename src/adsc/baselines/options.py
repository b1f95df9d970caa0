"""Method-specific settings (``CompressionConfig.options``) of the baselines, with defaults.

fastv
    ``score``: "last" (default; its repository's code: attention of the last prompt token at
    the layer before the pruning layer, mean over heads) or "mean" (its paper's text: average
    attention each image token receives from all prompt tokens, causally masked, mean over heads).
pyramiddrop
    ``positions``: "renumber" (its repository: survivors get contiguous rotary positions, decoded
    tokens are shifted back by the number dropped), "keep" (original positions, gaps stay) or
    "auto" (default: "renumber" on 1-D RoPE models such as LLaVA, "keep" on M-RoPE models such
    as Qwen2-VL, whose image positions are 2-D and have no contiguous renumbering).
tome
    ``proportional_attention``: True (default) adds log(size) of each merged key to the attention
    logits (eager and sdpa only; FlashAttention takes no additive mask).
    ``every_layer``: True (default) merges at every layer from the first pruning layer on, as
    ToMe does per block; False merges only at the given pruning layers.
random
    none (``seed`` is a config field).
"""

from __future__ import annotations

from ..config import ConfigError

DEFAULTS: dict[str, dict] = {
    "fastv": {"score": "last"},
    "pyramiddrop": {"positions": "auto"},
    "tome": {"proportional_attention": True, "every_layer": True},
    "random": {},
    "adsc": {},
}
CHOICES = {("fastv", "score"): ("last", "mean"), ("pyramiddrop", "positions"): ("auto", "renumber", "keep")}


def resolve(method: str, options: dict) -> dict:
    """The method's options with defaults filled in; unknown keys and bad values raise ConfigError."""
    known = DEFAULTS[method]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown options {unknown} for method {method!r}; known: {sorted(known) or 'none'}")
    out = {**known, **options}
    for key, value in out.items():
        allowed = CHOICES.get((method, key))
        if allowed is not None and value not in allowed:
            raise ConfigError(f"options[{key!r}] of {method} must be one of {allowed}, got {value!r}")
        if allowed is None and not isinstance(value, bool):
            raise ConfigError(f"options[{key!r}] of {method} must be True or False, got {value!r}")
    return out
