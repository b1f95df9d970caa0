"""Efficiency accounting: analytical FLOPs / KV model, measured counters, wall-clock benchmark.

    from adsc.profiling import account, preset, Conventions
    acc = account(preset("llava-1.5-7b"), schedule.tokens_per_layer(), text_tokens=64, new_tokens=32)
    acc.total_flops, acc.kv_bytes
"""

from .flops import Account, Conventions, LayerCost, account, attention_flops, vision_flops
from .shapes import PRESETS, ModelShape, TextShape, VisionShape, preset, shape_from_config

__all__ = [
    "Account", "Conventions", "LayerCost", "account", "attention_flops", "vision_flops",
    "PRESETS", "ModelShape", "TextShape", "VisionShape", "preset", "shape_from_config",
]
