"""A tiny random LLaVA folder to serve without a download: `python -m adsc.serving.vllm.demo DIR`.

Writes the model (4 decoder layers, head size 64, which vLLM's CPU kernels take; 48 px images
of 6 x 6 vision tokens), its processor with a chat template, and an ``adsc_config.json``
(pruning layers 1, 2, 3 at an average of 14 of 36 vision tokens), so that

    adsc serve DIR --compression DIR --max-model-len 512 --block-size 32

starts a compressed server. Its answers are random words: it shows the machinery, not a model.
"""

from __future__ import annotations

import sys

from ...config import CompressionConfig
from ...tiny import tiny_llava, tiny_llava_processor

IMAGE_SIZE, PATCH = 48, 8  # 6 x 6 = 36 vision tokens per image
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' or c['type'] == 'image_url' %}<image> {% else %}{{ c['text'] }} {% endif %}"
    "{% endfor %}{% endfor %}ASSISTANT:"
)
DEMO_CONFIG = CompressionConfig(layers=(1, 2, 3), budget=14, vision_tokens=IMAGE_SIZE // PATCH * (IMAGE_SIZE // PATCH))


def write_demo_model(path: str, seed: int = 3) -> str:
    model = tiny_llava(layers=4, hidden=128, heads=2, kv_heads=1, image_size=IMAGE_SIZE, patch=PATCH, seed=seed)
    model.config.architectures = ["LlavaForConditionalGeneration"]
    model.save_pretrained(path)
    processor = tiny_llava_processor(IMAGE_SIZE, PATCH)
    processor.chat_template = CHAT_TEMPLATE
    processor.save_pretrained(path)
    DEMO_CONFIG.save_pretrained(path)
    return str(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m adsc.serving.vllm.demo DIR")
    print(write_demo_model(sys.argv[1]))
