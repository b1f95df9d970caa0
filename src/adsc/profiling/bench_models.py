"""Models and inputs for ``adsc bench``: LLaVA-1.5 shapes with random weights, built from configs.

Speed and memory do not depend on weight values, so random weights measure what the real
checkpoint would. The image path is real: a 336x336 image through the CLIP-style processor
gives the 576 image tokens of LLaVA-1.5; the prompt uses LLaVA's system prompt.
"""

from __future__ import annotations

import torch

from ..tiny import IMAGE_TOKEN, PAD, tiny_llava_processor

PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: <image>\nWhat is the color of the big "
    "square on the left of the image? Answer the question using a single word or phrase. ASSISTANT:"
)

# name -> (text: hidden, layers, heads, kv_heads, intermediate, vocab; vision: hidden, layers, heads, intermediate)
SHAPES = {
    # LLaVA-1.5-7B exactly (Llama-2-7B + CLIP ViT-L/14-336)
    "7b": dict(text=(4096, 32, 32, 32, 11008, 32064), vision=(1024, 24, 16, 4096)),
    # CPU: same token counts and vocabulary, ~11x narrower and 2.7x shallower LLM, small CLIP tower;
    # the LLM's MLP keeps Llama's 11008/4096 width ratio so its share of FLOPs is realistic.
    # Sized so that full + no-op + 4 methods x 3 budgets run in about 2-3 minutes on one core.
    "cpu": dict(text=(384, 12, 6, 6, 1032, 32064), vision=(256, 4, 4, 1024)),
    # tests: seconds, still 576 vision tokens
    "tiny": dict(text=(64, 8, 4, 4, 176, 1024), vision=(32, 2, 2, 64)),
}


def scaled_layers(num_layers: int, layers=(2, 8, 16, 24), of: int = 32) -> tuple[int, ...]:
    """The default pruning layers moved proportionally to a shallower model (at least layer 1)."""
    out = sorted({max(1, round(x * num_layers / of)) for x in layers})
    return tuple(x for x in out if x < num_layers)


def build_model(name: str, attn: str = "sdpa", dtype=torch.float32, device: str = "cpu", seed: int = 0):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    (h, n, heads, kv, inter, vocab), (vh, vn, vheads, vinter) = SHAPES[name]["text"], SHAPES[name]["vision"]
    text = LlamaConfig(
        vocab_size=vocab, hidden_size=h, intermediate_size=inter, num_hidden_layers=n, num_attention_heads=heads,
        num_key_value_heads=kv, max_position_embeddings=4096, pad_token_id=PAD, bos_token_id=1, eos_token_id=2,
    )
    vision = CLIPVisionConfig(
        hidden_size=vh, intermediate_size=vinter, num_hidden_layers=vn, num_attention_heads=vheads,
        image_size=336, patch_size=14, projection_dim=768,
    )
    config = LlavaConfig(
        text_config=text, vision_config=vision, image_token_id=IMAGE_TOKEN, vision_feature_layer=-2,
        vision_feature_select_strategy="default", projector_hidden_act="gelu",
    )
    config.pad_token_id = PAD
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build directly in the target dtype: a 7B fp32 copy would not fit next to bf16
    try:
        with torch.device(device):
            model = LlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.set_attn_implementation(attn)
    return model.eval()


def build_inputs(batch: int = 1, device: str = "cpu", dtype=torch.float32) -> dict:
    from PIL import Image

    processor = tiny_llava_processor(image_size=336, patch=14)
    image = Image.new("RGB", (336, 336), (200, 40, 40))
    inputs = processor(images=[image] * batch, text=[PROMPT] * batch, return_tensors="pt")
    out = {k: v.to(device) for k, v in inputs.items()}
    out["pixel_values"] = out["pixel_values"].to(dtype)
    return out


def twin(model):
    """Another model of ``model``'s class over the very same parameter and buffer tensors: its own
    modules (so its own engine steps, and its own compiled step) and no second copy of the weights, which
    on a GPU would not fit beside the first at 7B. Built on the meta device, then every tensor is
    the original's object (tied weights stay tied: each name gets the tensor the original has)."""
    with torch.device("meta"):
        copy = type(model)(model.config)
    for kind, named in (("_parameters", model.named_parameters(remove_duplicate=False)),
                        ("_buffers", model.named_buffers(remove_duplicate=False))):
        for name, tensor in named:
            owner, _, leaf = name.rpartition(".")
            getattr(copy.get_submodule(owner), kind)[leaf] = tensor
    copy.generation_config = model.generation_config
    copy.set_attn_implementation(model.config.get_text_config()._attn_implementation)
    return copy.eval()
