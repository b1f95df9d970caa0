"""A tiny random Gemma 3 (``Gemma3ForConditionalGeneration``), built from a config (no download)."""

from __future__ import annotations

import torch

from .tiny import IMAGE_TOKEN, PAD, VISION_END, VISION_START, _random, tiny_tokenizer

START_OF_IMAGE, END_OF_IMAGE = VISION_START, VISION_END  # Gemma's <start_of_image> / <end_of_image>


def tiny_gemma3(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, sliding_window: int = 24,
                image_size: int = 32, patch: int = 4, tokens_per_image: int = 16, attn: str = "sdpa", seed: int = 0):
    """A random Gemma3ForConditionalGeneration: local (sliding-window) and global layers in Gemma 3's
    5:1 rhythm cut short (every third layer global here, so 6 layers hold both kinds twice), a SigLIP
    tower of (image_size / patch)^2 patches average-pooled to ``tokens_per_image`` image tokens
    (16 = 4 x 4 here; 256 = 16 x 16 in the released models), and a window small enough that the
    tiny prompts (two images, ~45 tokens) reach past it."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    head_dim = hidden // heads
    config = Gemma3Config(
        text_config=dict(
            vocab_size=512, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim, query_pre_attn_scalar=head_dim,
            max_position_embeddings=4096, sliding_window=sliding_window,
            layer_types=["full_attention" if (i + 1) % 3 == 0 else "sliding_attention" for i in range(layers)],
            pad_token_id=PAD, bos_token_id=1, eos_token_id=2,
        ),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=image_size, patch_size=patch),
        mm_tokens_per_image=tokens_per_image, image_token_index=IMAGE_TOKEN, boi_token_index=START_OF_IMAGE,
        eoi_token_index=END_OF_IMAGE,
    )
    model = _random(Gemma3ForConditionalGeneration, config, attn, seed)
    with torch.no_grad():  # Gemma 3 initialises its projector to zeros: every image would embed alike
        weight = model.model.multi_modal_projector.mm_input_projection_weight
        weight.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(seed)) * 0.2)
    return model


# Gemma's turn format, cut to what the tiny models need: an image becomes the processor's <start_of_image>
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<start_of_image>{% else %}{{ item['text'] }}"
    "{% endif %}{% endfor %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def tiny_gemma3_processor(image_size: int = 32, tokens_per_image: int = 16):
    """A Gemma3Processor for :func:`tiny_gemma3`: each <start_of_image> in the text is expanded, as
    the released processor does, to "\\n\\n<start_of_image>" + ``tokens_per_image`` image tokens +
    "<end_of_image>\\n\\n", with token_type_ids 1 on the image tokens."""
    from transformers import Gemma3Processor, PreTrainedTokenizerFast
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    markers = {"<start_of_image>": START_OF_IMAGE, "<end_of_image>": END_OF_IMAGE, "<image_soft_token>": IMAGE_TOKEN,
               "<start_of_turn>": 27, "<end_of_turn>": 26}
    words = tiny_tokenizer(markers=markers)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words.backend_tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                              "image_token": "<image_soft_token>"},
    )
    images = Gemma3ImageProcessorPil(size={"height": image_size, "width": image_size})
    return Gemma3Processor(image_processor=images, tokenizer=tokenizer, image_seq_length=tokens_per_image,
                           chat_template=CHAT_TEMPLATE)
