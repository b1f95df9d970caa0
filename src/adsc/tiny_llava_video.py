"""Tiny random LLaVA-OneVision and LLaVA-NeXT-Video models, built from configs (no download).

Same kind of shapes as the released models (OneVision: a SigLIP tower without CLS token and a
Qwen2 decoder; NeXT-Video: a CLIP tower and a Llama decoder), small sizes: a 48 px tower with
8 px patches gives a 6 x 6 grid per crop or frame.
"""

from __future__ import annotations

from .processors import images_only_video_slot
from .tiny import (
    DEFAULT_WORDS,
    IMAGE_TOKEN,
    PAD,
    VIDEO_TOKEN,
    _llama_and_clip,
    _random,
    tiny_llava_next_processor,
    tiny_tokenizer,
)

PINPOINTS = ((48, 96), (96, 48), (96, 96))


def tiny_llava_onevision(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, max_tiles: int = 2,
                         attn: str = "sdpa", seed: int = 0):
    """A random LlavaOnevisionForConditionalGeneration.

    Images: a 6 x 6 base grid, then the unpadded tile map of the best of PINPOINTS, shrunk by the
    model's "anyres_max_N" rule (N = ``max_tiles``; the released model uses 9, 2 makes the rule
    bite at this size: a 96 x 96 image's 12 x 12 map becomes 8 x 8), one newline per map row.
    Videos: per frame the 6 x 6 grid pooled to 3 x 3, one newline after the whole video.
    """
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, Qwen2Config, SiglipVisionConfig

    text = Qwen2Config(vocab_size=512, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096,
                       pad_token_id=PAD, bos_token_id=1, eos_token_id=2)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=48, patch_size=8, vision_use_head=False)
    config = LlavaOnevisionConfig(
        text_config=text, vision_config=vision, image_token_index=IMAGE_TOKEN, video_token_index=VIDEO_TOKEN,
        vision_feature_layer=-1, vision_feature_select_strategy="full", image_grid_pinpoints=[list(p) for p in PINPOINTS],
        vision_aspect_ratio=f"anyres_max_{max_tiles}",
    )
    return _random(LlavaOnevisionForConditionalGeneration, config, attn, seed)


def tiny_llava_next_video(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, attn: str = "sdpa",
                          seed: int = 0):
    """A random LlavaNextVideoForConditionalGeneration: images as :func:`adsc.tiny.tiny_llava_next`;
    videos: per frame the 6 x 6 grid average-pooled (stride 2) to 3 x 3, no newline tokens."""
    from transformers import LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration

    text, vision = _llama_and_clip(layers, hidden, heads, kv_heads, 48, 8, 512)
    config = LlavaNextVideoConfig(
        text_config=text, vision_config=vision, image_token_index=IMAGE_TOKEN, video_token_index=VIDEO_TOKEN,
        vision_feature_layer=-1, vision_feature_select_strategy="default", image_grid_pinpoints=[list(p) for p in PINPOINTS],
        projector_hidden_act="gelu", spatial_pool_mode="average", spatial_pool_stride=2,
    )
    return _random(LlavaNextVideoForConditionalGeneration, config, attn, seed)


def tiny_llava_onevision_processor(max_tiles: int = 2, words=DEFAULT_WORDS):
    """A LlavaOnevisionProcessor for :func:`tiny_llava_onevision`: 48 px crops over PINPOINTS, "<image>"
    expanded to the base grid + the shrunk tile map with its newlines. Without torchvision the video
    slot takes images only (:mod:`adsc.processors`)."""
    from transformers import LlavaOnevisionProcessor
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import LlavaOnevisionImageProcessorPil

    images = LlavaOnevisionImageProcessorPil(size={"height": 48, "width": 48}, image_grid_pinpoints=[list(p) for p in PINPOINTS])
    video = images_only_video_slot("LLaVA-OneVision")
    if video is None:
        from transformers import LlavaOnevisionVideoProcessor

        video = LlavaOnevisionVideoProcessor(size={"height": 48, "width": 48})
    return LlavaOnevisionProcessor(image_processor=images, tokenizer=tiny_tokenizer(words), video_processor=video,
                                   num_image_tokens=36, vision_feature_select_strategy="full",
                                   vision_aspect_ratio=f"anyres_max_{max_tiles}")


def tiny_llava_next_video_processor(words=DEFAULT_WORDS):
    """A LlavaNextVideoProcessor for :func:`tiny_llava_next_video`: images as :func:`adsc.tiny.tiny_llava_next_processor`.
    Without torchvision the video slot takes images only (:mod:`adsc.processors`)."""
    from transformers import LlavaNextVideoProcessor

    images = tiny_llava_next_processor(pinpoints=PINPOINTS, words=words).image_processor
    video = images_only_video_slot("LLaVA-NeXT-Video")
    if video is None:
        from transformers import LlavaNextVideoVideoProcessor

        video = LlavaNextVideoVideoProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    return LlavaNextVideoProcessor(video_processor=video, image_processor=images, tokenizer=tiny_tokenizer(words), patch_size=8,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1)
