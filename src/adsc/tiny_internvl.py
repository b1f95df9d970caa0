"""A tiny random InternVL (InternVLForConditionalGeneration) built from a config, no download."""

from __future__ import annotations

from .processors import images_only_video_slot
from .tiny import IMAGE_TOKEN, _random, tiny_tokenizer


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


# InternVL's marker tokens on the tiny ids (tests/core/families/internvl.py uses the same <img> / </img>)
INTERNVL_MARKERS = {"<img>": 28, "</img>": 29, "<video>": 30, "<IMG_CONTEXT>": IMAGE_TOKEN}


def tiny_internvl_processor(tile: int = 32, max_patches: int = 2):
    """An InternVLProcessor for :func:`tiny_internvl`: up to ``max_patches`` ``tile`` px tiles (plus a
    thumbnail when there are several), each written as 16 ``<IMG_CONTEXT>`` tokens inside ``<img>`` ...
    ``</img>``. Without torchvision the video slot takes images only (:mod:`adsc.processors`)."""
    from transformers import InternVLProcessor, PreTrainedTokenizerFast
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    words = tiny_tokenizer(markers=INTERNVL_MARKERS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words.backend_tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        extra_special_tokens={"start_image_token": "<img>", "end_image_token": "</img>",
                              "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"},
    )
    images = GotOcr2ImageProcessorPil(size={"height": tile, "width": tile}, crop_to_patches=True, max_patches=max_patches)
    video = images_only_video_slot("InternVL")
    if video is None:
        from transformers import InternVLVideoProcessor

        video = InternVLVideoProcessor(size={"height": tile, "width": tile})
    side = tile // 4 // 2  # the tiny model's patch 4 and pixel shuffle 0.5
    return InternVLProcessor(image_processor=images, tokenizer=tokenizer, video_processor=video,
                             image_seq_length=side * side)
