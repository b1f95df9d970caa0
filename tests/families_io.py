"""The families evaluation and training run on, each as a tiny model with its real processor class
(tests/evaluation/test_eval_families.py, tests/training/test_train_families.py)."""

from __future__ import annotations

import importlib.util
from functools import partial

import pytest

from adsc import tiny, tiny_gemma3, tiny_idefics3, tiny_internvl, tiny_llava_video, tiny_mistral3, tiny_qwen3_vl

# name -> (model builder, processor builder, the image marker of a chat template to give it, as the hub's writes an
# image; None: the processor's own (Gemma 3)). Without a chat template evaluation's default prompt writes the
# adapter's image_placeholder instead (test_eval_families.py checks both give the same image tokens).
FAMILIES = {
    "llava_next": (tiny.tiny_llava_next, tiny.tiny_llava_next_processor, "<image>"),
    "qwen2_vl": (tiny.tiny_qwen2_vl, tiny.tiny_qwen2_vl_processor, tiny.QWEN_IMAGE),
    "gemma3": (tiny_gemma3.tiny_gemma3, tiny_gemma3.tiny_gemma3_processor, None),
    "qwen3_vl": (tiny_qwen3_vl.tiny_qwen3_vl, tiny_qwen3_vl.tiny_qwen3_vl_processor, tiny.QWEN_IMAGE),
    "qwen3_vl_moe": (partial(tiny_qwen3_vl.tiny_qwen3_vl, experts=4), tiny_qwen3_vl.tiny_qwen3_vl_processor, tiny.QWEN_IMAGE),
    "internvl": (tiny_internvl.tiny_internvl, tiny_internvl.tiny_internvl_processor, "<IMG_CONTEXT>"),
    "llava_onevision": (tiny_llava_video.tiny_llava_onevision, tiny_llava_video.tiny_llava_onevision_processor, "<image>"),
    "llava_next_video": (tiny_llava_video.tiny_llava_next_video, tiny_llava_video.tiny_llava_next_video_processor,
                         "<image>"),
    "idefics3": (partial(tiny_idefics3.tiny_idefics3, "idefics3"), tiny_idefics3.tiny_idefics3_processor, "<image>"),
    "smolvlm": (tiny_idefics3.tiny_idefics3, partial(tiny_idefics3.tiny_idefics3_processor, "smolvlm"), "<image>"),
    "mistral3": (tiny_mistral3.tiny_mistral3, tiny_mistral3.tiny_mistral3_processor, "[IMG]"),
}
# packages a family's processor class needs beyond adsc's own (SmolVLM's writes video prompts with num2words)
NEEDS = {"smolvlm": "num2words"}


def params() -> list:
    """The family names as pytest params, skipped where the processor's package is missing."""
    def marks(name):
        need = NEEDS.get(name)
        missing = need is not None and importlib.util.find_spec(need) is None
        return pytest.mark.skipif(missing, reason=f"the {name} processor needs {need}")

    return [pytest.param(name, marks=marks(name)) for name in sorted(FAMILIES)]


def save_family(name: str, path: str, **model_kwargs) -> str:
    """The family's tiny model and processor saved in ``path`` like a hub checkpoint (with a chat template)."""
    build_model, build_processor, marker = FAMILIES[name]
    build_model(layers=6, **model_kwargs).save_pretrained(path)
    processor = build_processor()
    if marker is not None:  # hub processors carry a chat template; the tiny ones do not
        processor.chat_template = tiny.tiny_chat_template(marker)
    processor.save_pretrained(path)
    return path
