"""Tiny random SmolVLM / Idefics3 models built from configs, no download."""

from __future__ import annotations

from .tiny import IMAGE_TOKEN, _random, tiny_tokenizer


def tiny_idefics3(family: str = "smolvlm", layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2,
                  image_size: int = 32, patch: int = 4, scale: int = 2, attn: str = "sdpa", seed: int = 0):
    """A random SmolVLMForConditionalGeneration (``family`` "smolvlm") or Idefics3ForConditionalGeneration
    ("idefics3"): a SigLIP-style tower, a pixel-shuffle connector, a Llama decoder. Each (sub-)image
    of ``image_size`` px gets (image_size / patch / scale)^2 tokens: 4 x 4 = 16 at the defaults."""
    import transformers

    prefix = {"smolvlm": "SmolVLM", "idefics3": "Idefics3"}[family]
    config = getattr(transformers, f"{prefix}Config")(
        text_config=dict(model_type="llama", vocab_size=512, hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=4096, bos_token_id=1, eos_token_id=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=patch),
        image_token_id=IMAGE_TOKEN, scale_factor=scale,
    )
    return _random(getattr(transformers, f"{prefix}ForConditionalGeneration"), config, attn, seed)


def tiny_idefics3_processor(image_size: int = 32, tokens_per_image: int = 16):
    """An Idefics3Processor for :func:`tiny_idefics3` (either class: SmolVLM's processor splits images
    the same way and adds video): images scaled to a longest edge of 4 sub-images (as the released
    processors: 4 x 364 px for Idefics3-8B, 4 x 512 for SmolVLM-256M), split into sub-images of
    ``image_size`` px + the global image, each ``tokens_per_image`` <image> tokens."""
    from transformers import Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    tokenizer = tiny_tokenizer()
    # the markers the processor writes between runs, one token each as in the released vocabularies
    tokenizer.add_special_tokens({"additional_special_tokens": ["<global-img>"] + [
        f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]})
    images = Idefics3ImageProcessorPil(size={"longest_edge": 4 * image_size}, max_image_size={"longest_edge": image_size})
    return Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=tokens_per_image)
