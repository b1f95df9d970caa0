"""A tiny random InternVL (InternVLForConditionalGeneration) built from a config, no download."""

from __future__ import annotations

from .tiny import IMAGE_TOKEN, _random


def tiny_internvl(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, tile: int = 32, patch: int = 4,
                  attn: str = "sdpa", seed: int = 0):
    """InternVL3-shaped: an InternViT tower (CLS + patches), pixel shuffle 0.5, a Qwen2 decoder.

    A ``tile`` px tile has (tile / patch)^2 patches, 4 x 4 = 16 tokens after the shuffle at the
    defaults (InternVL3: 448 / 14 = 32 x 32 -> 16 x 16 = 256)."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    side = tile // patch // 2
    config = InternVLConfig(
        text_config=dict(
            model_type="qwen2", vocab_size=512, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096, bos_token_id=1,
            eos_token_id=2,
        ),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=tile, patch_size=patch),
        image_token_id=IMAGE_TOKEN, image_seq_length=side * side, downsample_ratio=0.5,
        vision_feature_select_strategy="default",
    )
    return _random(InternVLForConditionalGeneration, config, attn, seed)
