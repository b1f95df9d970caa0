"""A tiny random Mistral 3 (Mistral3ForConditionalGeneration) built from a config, no download."""

from __future__ import annotations

from .processors import allow_images_only_without_torchvision
from .tiny import DEFAULT_WORDS, IMAGE_TOKEN, _random, tiny_tokenizer


def tiny_mistral3(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, patch: int = 8,
                  max_image: int = 64, text_type: str = "mistral", attn: str = "sdpa", seed: int = 0):
    """Mistral-Small-3.1-shaped: a Pixtral tower (2-D RoPE, one patch per ``patch`` px), a 2 x 2
    patch merger, a Mistral decoder without sliding windows. An image of (h, w) px (multiples of
    2 * ``patch``) gets an (h / 16) x (w / 16) grid at the defaults; ``text_type`` "ministral3" builds
    the Ministral 3 decoder (position-scaled queries) that compress() refuses."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    text = dict(model_type=text_type, vocab_size=512, hidden_size=hidden, intermediate_size=hidden * 2,
                num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=hidden // heads,
                max_position_embeddings=4096, sliding_window=None, bos_token_id=1, eos_token_id=2)
    if text_type == "ministral3":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "llama_4_scaling_beta": 0.1,
                                   "original_max_position_embeddings": 4096}
    config = Mistral3Config(
        text_config=text,
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, head_dim=16,
                           image_size=max_image, patch_size=patch),
        image_token_index=IMAGE_TOKEN, spatial_merge_size=2, vision_feature_layer=-1,
    )
    return _random(Mistral3ForConditionalGeneration, config, attn, seed)


# Mistral 3's image marker tokens on the tiny ids ([IMG] is the models' IMAGE_TOKEN)
MISTRAL3_MARKERS = {"[IMG]": IMAGE_TOKEN, "[IMG_BREAK]": 30, "[IMG_END]": 29}


def tiny_mistral3_processor(patch: int = 8, max_image: int = 64, words=DEFAULT_WORDS):
    """A PixtralProcessor for :func:`tiny_mistral3`: an image resized to fit ``max_image`` px (multiples of
    2 * ``patch``), written as rows of ``[IMG]`` each ended by ``[IMG_BREAK]``, the last by ``[IMG_END]``.
    Without torchvision transformers' class is imported as :mod:`adsc.processors` allows."""
    from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

    allow_images_only_without_torchvision()
    from transformers.models.pixtral.processing_pixtral import PixtralProcessor

    images = PixtralImageProcessorPil(size={"longest_edge": max_image}, patch_size=patch)
    return PixtralProcessor(image_processor=images, tokenizer=tiny_tokenizer(words, markers=MISTRAL3_MARKERS),
                            patch_size=patch, spatial_merge_size=2)
