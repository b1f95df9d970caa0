"""Vision spans of a vLLM request, read from its multimodal placeholders and the model config.

vLLM knows each image as a placeholder range (offset, length) in the prompt plus the processed
inputs; the spans behind it follow the same architecture facts as the Hugging Face adapters
(adsc.adapters), so the kept set matches what ``adsc.compress`` keeps for the same prompt.

LLaVA-1.5 and Qwen2-VL items are one grid each (``Adapter.item_grid``). A LLaVA-NeXT image is
two grids (its base image and its unpadded high-res tile map) plus one image-newline token per
map row, laid out by the original image size (``image_sizes``): its spans come from the adapter's
own ``layout``, the function ``adsc.compress`` lays out its prompts with, so the newline tokens
are ``extra`` (kept like text) in both engines. vLLM's placeholder covers the whole run (every
token of it is an embedding, newlines included), in the order of the model's own packing.

A Mistral 3 image is one grid of the size the Pixtral processor resized it to (the item's
``pixel_values``, which vLLM crops to that size), each row of ``[IMG]`` tokens closed by
``[IMG_BREAK]``, the last by ``[IMG_END]``: the adapter's ``grid_span`` (its ``layout`` after the
resize), the separators its ``extra``. vLLM's placeholder covers the whole run, separators included (they are text tokens, not
embeddings: its ``is_embed`` mask), so its length is the layout's token count as for LLaVA-NeXT.

An Idefics3 (or SmolVLM) image is ``num_patches`` sub-images (the split ones, then the global one), one grid
each (``Adapter.image_grid``), back to back as the adapter's ``layout`` gives them. vLLM's placeholder
covers the whole run, the marker text between sub-images included (``<fake_token_around_image>``,
``<row_i_col_j>``, newlines, ``<global-img>``), and marks the image tokens by ``is_embed``: such a
layout counts embeddings only, and each span is placed on its run of embeddings.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import torch

from ...adapters import Idefics3Adapter, LlavaAdapter, LlavaNextAdapter, Mistral3Adapter, Qwen2VLAdapter, VisionSpan
from ...adapters.base import CAUSAL
from ...adapters.layouts import back_to_back, declared_mask_pattern

LLAVA = ("LlavaForConditionalGeneration",)
LLAVA_NEXT = ("LlavaNextForConditionalGeneration",)
QWEN2_VL = ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration")
MISTRAL3 = ("Mistral3ForConditionalGeneration",)
# SmolVLM: vLLM 0.32's SmolVLM model is its Idefics3 model with SmolVLMProcessor; the same spans
IDEFICS3 = ("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration")
SUPPORTED = LLAVA + LLAVA_NEXT + QWEN2_VL + MISTRAL3 + IDEFICS3
# in-memory configs name no class
BY_MODEL_TYPE = dict(zip(("llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "mistral3", "idefics3", "smolvlm"), SUPPORTED))
ADAPTERS = {**dict.fromkeys(LLAVA, LlavaAdapter()), **dict.fromkeys(LLAVA_NEXT, LlavaNextAdapter()),
            **dict.fromkeys(QWEN2_VL, Qwen2VLAdapter()), **dict.fromkeys(MISTRAL3, Mistral3Adapter()),
            **dict.fromkeys(IDEFICS3, Idefics3Adapter())}
SIZED = LLAVA_NEXT + MISTRAL3 + IDEFICS3  # layouts that follow each image's size, which precomputed embeddings do not carry
EMBEDDINGS_ONLY = IDEFICS3  # layouts of the placeholder's embeddings only (its marker text between runs left out)


# Families adsc compresses in transformers but cannot serve correctly on vLLM 0.32, and why.
REFUSED = {
    "LlavaOnevisionForConditionalGeneration": (
        "vLLM 0.32 lays out each image of a multi-image prompt as its full anyres tile map, where transformers (the "
        "model adsc.compress and adsc train run) packs such images as one crop each, so the two engines would see "
        "different image tokens; and its processor needs torchvision for the video slot, which CPU installs lack"
    ),
}


def _refuse_non_causal(hf_config, name: str) -> None:
    # The plugin gives every layer a full-attention KV spec in compact (kept-token) space; a sliding
    # window would then be applied over compact positions, or dropped, where adsc.compress keeps it
    # in original positions: a silently different model, so refuse it. Any other pattern the
    # adapter names (Ministral 3's position-scaled queries) adsc.compress refuses itself: no
    # reference to serve.
    text = getattr(hf_config, "text_config", hf_config)
    layers = getattr(text, "num_hidden_layers", 0)
    if any(declared_mask_pattern(text, i) != CAUSAL for i in range(layers)):
        raise LayoutError(
            f"adsc does not serve {name} with sliding-window layers on vLLM (its config sets sliding_window / "
            "layer_types): the plugin's compact per-stage KV cache has no window. Run it compressed in Hugging Face "
            "transformers (adsc.compress), which keeps the window in original positions"
        )
    model = SimpleNamespace(config=hf_config)
    other = {ADAPTERS[name].mask_pattern(model, i) for i in range(layers)} - {CAUSAL}
    if other:
        raise LayoutError(
            f"adsc does not serve {name} on vLLM with layers of {', '.join(sorted(map(str, other)))}: adsc.compress refuses "
            "to prune them too, so there is no reference to serve; serve the model uncompressed"
        )


class LayoutError(ValueError):
    """A request whose vision tokens do not form the grids the model config implies."""


def architecture(hf_config) -> str:
    names = list(getattr(hf_config, "architectures", None) or [])
    if not names and getattr(hf_config, "model_type", None) in BY_MODEL_TYPE:
        return BY_MODEL_TYPE[hf_config.model_type]
    for name in names:
        if name in SUPPORTED:
            _refuse_non_causal(hf_config, name)
            return name
        if name in REFUSED:
            raise LayoutError(f"adsc does not serve {name} on vLLM: {REFUSED[name]}. Run it compressed in Hugging Face "
                              "transformers (adsc.compress)")
    raise LayoutError(
        f"adsc serves {', '.join(SUPPORTED)} on vLLM; this model is {names or 'of unknown architecture'}. "
        "Other families run compressed in Hugging Face transformers (adsc.compress) only"
    )


def _item_tensors(data) -> dict:
    """The processed inputs of one multimodal item as plain tensors (vLLM wraps each in a field element)."""
    return {key: getattr(value, "data", value) for key, value in (data or {}).items()}


def item_spans(arch: str, hf_config, modality: str, item: dict) -> list[VisionSpan]:
    """The spans of one item's vision-token run, at positions from 0 (grid tokens and extra ones)."""
    adapter = ADAPTERS[arch]
    if arch in LLAVA_NEXT:
        if modality != "image" or "image_sizes" not in item:
            raise ValueError(f"LLaVA-NeXT serves images with their image_sizes, not a {modality} item of {sorted(item)}")
        image_size = tuple(int(v) for v in item["image_sizes"].reshape(-1).tolist())  # (height, width)
        return adapter.layout(SimpleNamespace(config=hf_config), image_size=image_size)
    if arch in MISTRAL3:
        if modality != "image" or "pixel_values" not in item:
            raise ValueError(f"Mistral 3 serves images with their pixel_values, not a {modality} item of {sorted(item)}")
        size = tuple(item["pixel_values"].shape[-2:])  # (height, width) as the processor resized it: its grid
        return [adapter.grid_span(*adapter.grid_of(SimpleNamespace(config=hf_config), size))]
    if arch in IDEFICS3:
        if modality != "image" or "num_patches" not in item:
            raise ValueError(f"Idefics3 / SmolVLM serve images with their num_patches, not a {modality} item of {sorted(item)}")
        return back_to_back(adapter.image_grid(SimpleNamespace(config=hf_config)), int(item["num_patches"]))
    frames, rows, cols = adapter.item_grid(hf_config, modality, item)
    return [VisionSpan(0, (rows, cols), frames=frames)]


def _shifted(span: VisionSpan, offset: int) -> VisionSpan:
    positions = None if span.positions is None else tuple(p + offset for p in span.positions)
    return replace(span, start=span.start + offset, positions=positions, extra=tuple(p + offset for p in span.extra))


def _on_embeddings(item: list[VisionSpan], offset: int, is_embed) -> list[VisionSpan]:
    """Spans laid out over a placeholder's embeddings only, placed on their runs of embeddings (absolute positions)."""
    embeds = (offset + is_embed.nonzero().flatten()).tolist()
    out = []
    for span in item:
        first, last = embeds[span.start], embeds[span.start + span.length - 1]
        if last - first + 1 != span.length:
            raise LayoutError(f"the image tokens of a placeholder at {offset} are not one run per {span.grid[0]}x"
                              f"{span.grid[1]} grid: text inside a sub-image's run")
        out.append(replace(span, start=first))
    return out


def spans(hf_config, features) -> list[VisionSpan]:
    """VisionSpans of one request. ``features``: (modality, offset, length, data[, is_embed]) per item, in prompt
    order; ``is_embed`` (vLLM's placeholder mask, None: every token an embedding) places the layouts of
    :data:`EMBEDDINGS_ONLY` families."""
    arch = architecture(hf_config)
    out = []
    for modality, offset, length, data, *mask in features:
        try:
            item = item_spans(arch, hf_config, modality, _item_tensors(data))
        except ValueError as err:
            raise LayoutError(str(err)) from None
        tokens = sum(s.length + len(s.extra) for s in item)
        is_embed = mask[0] if mask and mask[0] is not None else torch.ones(length, dtype=torch.bool)
        if arch in EMBEDDINGS_ONLY:
            if tokens != int(is_embed.sum()):
                raise LayoutError(f"an {modality} placeholder at {offset} holds {int(is_embed.sum())} image tokens, not "
                                  f"the {len(item)} sub-images of {item[0].grid[0]}x{item[0].grid[1]} ({tokens} tokens)")
            out += _on_embeddings(item, offset, is_embed)
            continue
        if tokens != length:
            shape = " + ".join(f"{s.grid[0]}x{s.grid[1]}" if s.frames == 1 else f"{s.frames} frames of {s.grid[0]}x{s.grid[1]}"
                               for s in item)
            extra = sum(len(s.extra) for s in item)
            shape += f" + {extra} extra" if extra else ""
            raise LayoutError(f"an {modality} placeholder of {length} tokens at {offset} does not match its {shape} grid "
                              f"({tokens} tokens)")
        out += [_shifted(s, offset) for s in item]  # a video: the HF engine's per-frame spans
    return sorted(out, key=lambda s: s.start)
