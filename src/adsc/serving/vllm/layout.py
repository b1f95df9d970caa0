"""Vision spans of a vLLM request, read from its multimodal placeholders and the model config.

vLLM knows each image as a placeholder range (offset, length) in the prompt plus the processed
inputs; the grid behind it follows the same architecture facts as the Hugging Face adapters
(adsc.adapters), so the kept set matches what ``adsc.compress`` keeps for the same prompt.
"""

from __future__ import annotations

from ...adapters import LlavaAdapter, Qwen2VLAdapter, VisionSpan

LLAVA = ("LlavaForConditionalGeneration",)
QWEN2_VL = ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration")
SUPPORTED = LLAVA + QWEN2_VL
BY_MODEL_TYPE = dict(zip(("llava", "qwen2_vl", "qwen2_5_vl"), SUPPORTED))  # configs built in memory name no class
ADAPTERS = {**dict.fromkeys(LLAVA, LlavaAdapter()), **dict.fromkeys(QWEN2_VL, Qwen2VLAdapter())}


class LayoutError(ValueError):
    """A request whose vision tokens do not form the grids the model config implies."""


def architecture(hf_config) -> str:
    names = list(getattr(hf_config, "architectures", None) or [])
    if not names and getattr(hf_config, "model_type", None) in BY_MODEL_TYPE:
        return BY_MODEL_TYPE[hf_config.model_type]
    for name in names:
        if name in SUPPORTED:
            return name
    raise LayoutError(
        f"adsc serves {', '.join(SUPPORTED)} on vLLM; this model is {names or 'of unknown architecture'}. "
        "Other families run compressed in Hugging Face transformers (adsc.compress) only"
    )


def _item_tensors(data) -> dict:
    """The processed inputs of one multimodal item as plain tensors (vLLM wraps each in a field element)."""
    return {key: getattr(value, "data", value) for key, value in (data or {}).items()}


def spans(hf_config, features) -> list[VisionSpan]:
    """VisionSpans of one request. ``features``: (modality, offset, length, data) per item, in prompt order."""
    adapter = ADAPTERS[architecture(hf_config)]
    out = []
    for modality, offset, length, data in features:
        item = _item_tensors(data)
        try:
            frames, rows, cols = adapter.item_grid(hf_config, modality, item)
        except ValueError as err:
            raise LayoutError(str(err)) from None
        if frames * rows * cols != length:
            shape = f"{rows}x{cols}" if frames == 1 else f"{frames} frames of {rows}x{cols}"
            raise LayoutError(f"an {modality} placeholder of {length} tokens at {offset} does not match its {shape} grid")
        out.append(VisionSpan(offset, (rows, cols), frames=frames))  # a video: the HF engine's per-frame spans
    return sorted(out, key=lambda s: s.start)
