"""Tiny random model folders to serve without a download: `python -m adsc.serving.vllm.demo DIR [FAMILY]`.

Each folder holds the model (4 decoder layers, head size 64, which vLLM's CPU kernels take), its
processor with a chat template, and an ``adsc_config.json`` (pruning layers 1, 2, 3), so that

    adsc serve DIR --compression DIR --max-model-len 512 --block-size 32

starts a compressed server. LLaVA: 48 px images of 6 x 6 vision tokens, an average of 14 of 36
kept. LLaVA-NeXT: the same 48 px tower, anyres pinpoints of 48 x 96, 96 x 48 and 96 x 96 px, so an
image is a 6 x 6 base grid plus a tile map of up to 12 x 12 tokens with one newline token per row
(192 tokens for a 96 x 96 image), 60 of the 180 grid tokens of that image kept. Qwen2-VL and
Qwen2.5-VL: images up to 112 x 112 px, 2 x 2 merged patches of 14 px (a 112 x 84 image is 4 x 3
tokens), an average of 6 of 12 kept. Mistral 3: a Pixtral tower of 8 px patches merged 2 x 2, images up to
96 px (multiples of 16: a 64 x 48 image is 3 x 4 [IMG] tokens, each row closed by [IMG_BREAK] / [IMG_END]),
an average of 12 of 36 kept. Idefics3 and SmolVLM: 32 px sub-images of 4 x 4 tokens (8 px patches after the pixel
shuffle), an image scaled to a longest edge of 64 px and split into up to 2 x 2 of them plus the global
one, an average of 6 of 16 kept in each. Their answers are random words: they show the machinery, not a model.
"""

from __future__ import annotations

import sys

from ...config import CompressionConfig
from ...tiny import (
    QWEN_IMAGE,
    tiny_llava,
    tiny_llava_next,
    tiny_llava_next_processor,
    tiny_llava_processor,
    tiny_qwen2_5_vl,
    tiny_qwen2_vl,
    tiny_qwen2_vl_processor,
)
from ...tiny_idefics3 import tiny_idefics3, tiny_idefics3_processor
from ...tiny_mistral3 import tiny_mistral3, tiny_mistral3_processor

IMAGE_SIZE, PATCH = 48, 8  # LLaVA: 6 x 6 = 36 vision tokens per image
QWEN_MAX_PIXELS = 112 * 112  # Qwen2-VL: at most 4 x 4 merged tokens per image
MISTRAL3_PATCH, MISTRAL3_MAX_IMAGE = 8, 96  # Mistral 3: 16 px per merged token, at most 6 x 6 per image
LLAVA_NEXT_PINPOINTS = ((48, 96), (96, 48), (96, 96))  # (height, width): 1 x 2, 2 x 1 or 2 x 2 tiles
LLAVA_NEXT_REFERENCE = 36 + 12 * 12  # grid tokens of a 96 x 96 image: base grid + full tile map (newlines not counted)
IMAGE_MARKERS = {"llava": "<image> ", "llava_next": "<image> ", "qwen2_vl": QWEN_IMAGE + " ", "qwen2_5_vl": QWEN_IMAGE + " ",
                 "mistral3": "[IMG] ", "idefics3": "<image> ", "smolvlm": "<image> "}
DEMO_CONFIGS = {
    "llava": CompressionConfig(layers=(1, 2, 3), budget=14, vision_tokens=IMAGE_SIZE // PATCH * (IMAGE_SIZE // PATCH)),
    "llava_next": CompressionConfig(layers=(1, 2, 3), budget=60, vision_tokens=LLAVA_NEXT_REFERENCE),
    "qwen2_vl": CompressionConfig(layers=(1, 2, 3), budget=6, vision_tokens=12),
    "qwen2_5_vl": CompressionConfig(layers=(1, 2, 3), budget=6, vision_tokens=12),
    "mistral3": CompressionConfig(layers=(1, 2, 3), budget=12, vision_tokens=(MISTRAL3_MAX_IMAGE // (2 * MISTRAL3_PATCH)) ** 2),
    "idefics3": CompressionConfig(layers=(1, 2, 3), budget=6, vision_tokens=16),
    "smolvlm": CompressionConfig(layers=(1, 2, 3), budget=6, vision_tokens=16),
}
DEMO_CONFIG = DEMO_CONFIGS["llava"]


def chat_template(image_marker: str) -> str:
    return (
        "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
        "{% if c['type'] == 'image' or c['type'] == 'image_url' %}" + image_marker + "{% else %}{{ c['text'] }} {% endif %}"
        "{% endfor %}{% endfor %}ASSISTANT:"
    )


def _model_and_processor(family: str, seed: int):
    if family == "llava":
        model = tiny_llava(layers=4, hidden=128, heads=2, kv_heads=1, image_size=IMAGE_SIZE, patch=PATCH, seed=seed)
        return model, tiny_llava_processor(IMAGE_SIZE, PATCH), "LlavaForConditionalGeneration"
    if family == "llava_next":
        model = tiny_llava_next(layers=4, hidden=128, heads=2, kv_heads=1, image_size=IMAGE_SIZE, patch=PATCH,
                                pinpoints=LLAVA_NEXT_PINPOINTS, seed=seed)
        return model, tiny_llava_next_processor(IMAGE_SIZE, PATCH, LLAVA_NEXT_PINPOINTS), "LlavaNextForConditionalGeneration"
    if family == "qwen2_vl":
        model = tiny_qwen2_vl(layers=4, hidden=128, heads=2, kv_heads=1, attn="eager", seed=seed)
        return model, tiny_qwen2_vl_processor(QWEN_MAX_PIXELS), "Qwen2VLForConditionalGeneration"
    if family == "qwen2_5_vl":
        model = tiny_qwen2_5_vl(layers=4, hidden=128, heads=2, kv_heads=1, attn="eager", seed=seed)
        processor = tiny_qwen2_vl_processor(QWEN_MAX_PIXELS, processor_class="Qwen2_5_VLProcessor")
        return model, processor, "Qwen2_5_VLForConditionalGeneration"
    if family == "mistral3":
        model = tiny_mistral3(layers=4, hidden=128, heads=2, kv_heads=1, patch=MISTRAL3_PATCH, max_image=MISTRAL3_MAX_IMAGE,
                              attn="eager", seed=seed)
        processor = tiny_mistral3_processor(patch=MISTRAL3_PATCH, max_image=MISTRAL3_MAX_IMAGE)
        return model, processor, "Mistral3ForConditionalGeneration"
    if family in ("idefics3", "smolvlm"):  # one builder: SmolVLM is Idefics3 with its own processor class
        model = tiny_idefics3(family, layers=4, hidden=128, heads=2, kv_heads=1, attn="eager", seed=seed)
        return model, tiny_idefics3_processor(family), type(model).__name__
    raise ValueError(f"demo families are {', '.join(IMAGE_MARKERS)}, not {family!r}")


def write_demo_model(path: str, family: str = "llava", seed: int = 3) -> str:
    model, processor, architecture = _model_and_processor(family, seed)
    model.config.architectures = [architecture]
    model.save_pretrained(path)
    processor.chat_template = chat_template(IMAGE_MARKERS[family])
    processor.save_pretrained(path)
    DEMO_CONFIGS[family].save_pretrained(path)
    return str(path)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in IMAGE_MARKERS):
        sys.exit(f"usage: python -m adsc.serving.vllm.demo DIR [{'|'.join(IMAGE_MARKERS)}]")
    print(write_demo_model(*sys.argv[1:]))
