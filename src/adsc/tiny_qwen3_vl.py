"""A tiny random Qwen3-VL (``Qwen3VLForConditionalGeneration``), built from a config (no download)."""

from __future__ import annotations

import torch

from .processors import images_only_video_slot
from .tiny import (
    DEFAULT_WORDS,
    IMAGE_TOKEN,
    PAD,
    QWEN_MARKERS,
    VIDEO_TOKEN,
    VISION_END,
    VISION_START,
    _mrope_sections,
    tiny_tokenizer,
)


def tiny_qwen3_vl(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, deepstack: int = 2,
                  attn: str = "sdpa", seed: int = 0, experts: int = 0):
    """A random Qwen3VLForConditionalGeneration: patch 16, 2x2 merge, interleaved M-RoPE, and
    ``deepstack`` DeepStack layers (the vision tower's features added to the outputs of decoder
    layers 0 .. deepstack - 1 at the vision positions). ``experts`` > 0: the MoE variant
    (Qwen3VLMoeForConditionalGeneration) with that many experts, 2 per token, on every layer but
    the last (a dense MLP there, as ``mlp_only_layers`` allows)."""
    import transformers

    prefix = "Qwen3VLMoe" if experts else "Qwen3VL"
    moe = dict(num_experts=experts, num_experts_per_tok=2, moe_intermediate_size=hidden, decoder_sparse_step=1,
               mlp_only_layers=[layers - 1]) if experts else {}
    head_dim = hidden // heads
    config = getattr(transformers, f"{prefix}Config")(
        text_config=dict(**moe,
            vocab_size=512, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": _mrope_sections(head_dim), "mrope_interleaved": True,
                             "rope_theta": 10000.0},
            pad_token_id=PAD, bos_token_id=1, eos_token_id=2,
        ),
        vision_config=dict(depth=deepstack + 1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64,
                           deepstack_visual_indexes=list(range(deepstack))),
        image_token_id=IMAGE_TOKEN, video_token_id=VIDEO_TOKEN, vision_start_token_id=VISION_START,
        vision_end_token_id=VISION_END,
    )
    torch.manual_seed(seed)
    model = getattr(transformers, f"{prefix}ForConditionalGeneration")(config)
    if experts:  # the router starts at zeros (every expert tied); random weights make routing depend on the token
        for layer in model.model.language_model.layers:
            if hasattr(layer.mlp, "gate"):
                torch.nn.init.normal_(layer.mlp.gate.weight, std=0.5)
    model.set_attn_implementation(attn)
    return model.eval()


def tiny_qwen3_vl_processor(max_pixels: int = 128 * 128, words=DEFAULT_WORDS):
    """A Qwen3VLProcessor for :func:`tiny_qwen3_vl` (patch 16, 2x2 merge; images of at most ``max_pixels``,
    e.g. a 60 x 40 image -> a 4 x 2 merged grid, 8 tokens). Without torchvision the video slot takes
    images only (:mod:`adsc.processors`)."""
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    sizes = dict(patch_size=16, merge_size=2, temporal_patch_size=2)
    images = Qwen2VLImageProcessorPil(size={"shortest_edge": 32 * 32, "longest_edge": max_pixels}, **sizes)
    video = images_only_video_slot("Qwen3-VL")
    if video is None:
        from transformers import Qwen3VLVideoProcessor

        video = Qwen3VLVideoProcessor(size={"shortest_edge": 32 * 32, "longest_edge": max_pixels}, **sizes)
    return Qwen3VLProcessor(image_processor=images, tokenizer=tiny_tokenizer(words, markers=QWEN_MARKERS),
                            video_processor=video)
