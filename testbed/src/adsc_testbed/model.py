"""The testbed's small MLLM: a LLaVA-1.5-shaped model small enough to train from scratch on a CPU.

Architecture (all from transformers configs, nothing downloaded):
- vision: a CLIP ViT, 168 px / patch 14 -> a 12 x 12 grid of 144 tokens (the same budget ratios as
  576: 48 / 32 / 16 tokens are 1/3, 2/9, 1/9), "default" feature selection (CLS dropped);
- projector: LLaVA-1.5's two-layer GELU MLP;
- language model: a Llama decoder deep enough for several pruning stages (12 layers: layer 0 always
  sees all 144 tokens, so an average of 16 = 1/9 needs more than 9 layers).
The tokenizer is word-level over the testbed's closed vocabulary, so a word is one token.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from adsc.tiny import IMAGE_TOKEN, PAD, tiny_tokenizer

from .facts import IMAGE_SIZE, PATCH
from .world import COLORS, NUMBER_WORDS, PLURALS, SHAPES, VOCAB

VICUNA_WORDS = (
    "A chat between a curious user and an artificial intelligence assistant . The assistant gives helpful , "
    "detailed , and polite answers to the user ' s questions . USER : ASSISTANT :"
).split()


def _words_of(text: str) -> list[str]:
    from tokenizers import pre_tokenizers

    split = pre_tokenizers.Sequence([pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Punctuation("isolated")])
    return [w for w, _ in split.pre_tokenize_str(text.replace("\n", " "))]


def vocabulary(train_json: str | Path) -> list[str]:
    """Every word of the training conversations, the world's names and the chat template.

    Words that only occur in evaluation prompts map to <unk>; the model never has to produce them.
    """
    words: set[str] = set(VICUNA_WORDS) | set(COLORS) | set(SHAPES) | set(PLURALS.values()) | set(NUMBER_WORDS)
    words |= set(VOCAB) | {"yes", "no", "Yes", "No", "small", "large"}
    for record in json.loads(Path(train_json).read_text()):
        for turn in record["conversations"]:
            words.update(_words_of(turn["value"]))
    return sorted(words)


# llava-hf's LLaVA-1.5 prompt ("USER: <image>\n{question} ASSISTANT: {answer}</s>") as a chat template,
# so that training (--template chat_template) and evaluation ("auto") format prompts identically.
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: {% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "</s>{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_processor(words: list[str]):
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    images = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return LlavaProcessor(image_processor=images, tokenizer=tiny_tokenizer(words), patch_size=PATCH,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1,
                          chat_template=CHAT_TEMPLATE)


def build_model(vocab_size: int, layers: int = 12, hidden: int = 128, vision_hidden: int = 96, vision_layers: int = 3,
                seed: int = 0, attn: str = "sdpa"):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    text = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                       pad_token_id=PAD, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    vision = CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=4 * vision_hidden, num_hidden_layers=vision_layers,
                              num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=PATCH, projection_dim=vision_hidden)
    config = LlavaConfig(text_config=text, vision_config=vision, image_token_id=IMAGE_TOKEN, vision_feature_layer=-1,
                         vision_feature_select_strategy="default", projector_hidden_act="gelu")
    config.pad_token_id = PAD
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.set_attn_implementation(attn)
    return model
