"""Tiny random SmolVLM / Idefics3 models built from configs, no download."""

from __future__ import annotations

from .processors import images_only_video_slot
from .tiny import DEFAULT_WORDS, IMAGE_TOKEN, _random, tiny_tokenizer


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


# Idefics3's marker tokens on the tiny ids: <image> is the models' IMAGE_TOKEN, the rest sit above the words
IDEFICS3_MARKERS = {"<image>": IMAGE_TOKEN, "<end_of_utterance>": 397, "<global-img>": 398, "<fake_token_around_image>": 399,
                    **{f"<row_{r + 1}_col_{c + 1}>": 400 + 6 * r + c for r in range(6) for c in range(6)}}


def tiny_idefics3_processor(family: str = "idefics3", image_size: int = 32, patch: int = 4, scale: int = 2,
                            words=DEFAULT_WORDS, longest_edge: int = 2):
    """An Idefics3Processor (``family`` "idefics3") or SmolVLMProcessor ("smolvlm") for :func:`tiny_idefics3`:
    images are scaled to a longest edge of ``longest_edge`` sub-images (the released processors use 4: 4 x 364 px
    for Idefics3-8B, 4 x 512 for SmolVLM-256M; 2 keeps the tests small), split into sub-images of ``image_size``
    px plus the global image, each written as ``<fake_token_around_image>`` + ``<row_i_col_j>`` / ``<global-img>`` + its
    (image_size / patch / scale)^2 ``<image>`` tokens. SmolVLM's processor needs the num2words package (its
    video prompts), and without torchvision its video slot takes images only (:mod:`adsc.processors`)."""
    import transformers

    prefix = {"smolvlm": "SmolVLM", "idefics3": "Idefics3"}[family]
    module = getattr(transformers.models, family)
    images = getattr(module, f"image_processing_pil_{family}").__dict__[f"{prefix}ImageProcessorPil"](
        size={"longest_edge": longest_edge * image_size}, max_image_size={"longest_edge": image_size}, do_image_splitting=True)
    tokenizer = tiny_tokenizer(words, markers=IDEFICS3_MARKERS)
    seq = (image_size // patch // scale) ** 2
    if family == "idefics3":
        return transformers.Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=seq)
    video = images_only_video_slot("SmolVLM")
    if video is None:
        video = transformers.SmolVLMVideoProcessor()
    return transformers.SmolVLMProcessor(image_processor=images, tokenizer=tokenizer, video_processor=video, image_seq_len=seq)
