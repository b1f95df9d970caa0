"""Model shapes for the analytical FLOPs / KV model: only the numbers that cost compute or memory.

Presets are typed in from the models' public ``config.json`` values (no download);
:func:`shape_from_config` reads the same numbers off a transformers config object, so the
analytical model and a real (tiny or full-size) model are described the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    # per decoder layer, its sliding window (query q sees key k only if q - k < window) or None
    # for a full-attention layer; () = no sliding layers (Llama, Qwen2-VL, LLaVA)
    windows: tuple[int | None, ...] = ()

    def window(self, layer: int) -> int | None:
        return self.windows[layer] if self.windows else None

    @property
    def linear_params(self) -> int:
        """Weights of one decoder layer's projections (q, k, v, o, gate, up, down); biases ignored."""
        q = o = self.hidden * self.heads * self.head_dim
        kv = 2 * self.hidden * self.kv_heads * self.head_dim
        return q + kv + o + 3 * self.hidden * self.intermediate

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """Keys plus values one token leaves in one layer's cache."""
        return 2 * self.kv_heads * self.head_dim * dtype_bytes


@dataclass(frozen=True)
class VisionShape:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    patch_in: int  # input features of one patch: channels * patch * patch (* temporal patch)
    patches: int  # patches of one image through the tower
    extra_tokens: int  # CLS token(s) the tower carries besides the patches
    out_tokens: int  # tokens one image contributes to the LLM (after CLS removal / spatial merge)
    projector: tuple[tuple[int, int], ...]  # (in, out) of each projector linear, applied to its tokens
    projector_tokens: int  # tokens the projector runs on

    @property
    def seq(self) -> int:
        return self.patches + self.extra_tokens


@dataclass(frozen=True)
class ModelShape:
    name: str
    text: TextShape
    vision: VisionShape

    @property
    def vision_tokens(self) -> int:
        return self.vision.out_tokens


_CLIP_L336 = dict(hidden=1024, layers=24, heads=16, intermediate=4096, patch_in=3 * 14 * 14, patches=576, extra_tokens=1, out_tokens=576)


def llava_15_7b() -> ModelShape:
    # llava-hf/llava-1.5-7b-hf: Llama-2-7B (vocab 32064 after the image/pad tokens) + CLIP ViT-L/14-336
    text = TextShape(hidden=4096, layers=32, heads=32, kv_heads=32, head_dim=128, intermediate=11008, vocab=32064)
    vision = VisionShape(**_CLIP_L336, projector=((1024, 4096), (4096, 4096)), projector_tokens=576)
    return ModelShape("llava-1.5-7b", text, vision)


def llava_15_13b() -> ModelShape:
    # llava-hf/llava-1.5-13b-hf: Vicuna-13B (Llama-2-13B shape) + the same CLIP tower
    text = TextShape(hidden=5120, layers=40, heads=40, kv_heads=40, head_dim=128, intermediate=13824, vocab=32064)
    vision = VisionShape(**_CLIP_L336, projector=((1024, 5120), (5120, 5120)), projector_tokens=576)
    return ModelShape("llava-1.5-13b", text, vision)


def qwen2_vl_7b(image_size: int = 448) -> ModelShape:
    # Qwen/Qwen2-VL-7B-Instruct: 28 layers, GQA 28/4 heads; vision tower 32 x 1280, patch 14,
    # temporal patch 2 (an image is repeated over 2 frames), 2x2 merge into the LLM.
    # Images vary in size; a 448x448 image gives 32x32 patches -> 256 LLM tokens.
    grid = image_size // 14
    text = TextShape(hidden=3584, layers=28, heads=28, kv_heads=4, head_dim=128, intermediate=18944, vocab=152064)
    merged = grid * grid // 4
    vision = VisionShape(
        hidden=1280, layers=32, heads=16, intermediate=5120, patch_in=3 * 2 * 14 * 14, patches=grid * grid,
        extra_tokens=0, out_tokens=merged, projector=((5120, 5120), (5120, 3584)), projector_tokens=merged,
    )
    return ModelShape("qwen2-vl-7b", text, vision)


def gemma_3_4b() -> ModelShape:
    # google/gemma-3-4b-it: 34 layers, GQA 8/4 heads of 256, five local layers (window 1024) to one
    # global (layer_types: every 6th is full_attention); SigLIP 896 px, patch 14 (64 x 64 patches,
    # no CLS), average-pooled 4 x 4 into 256 tokens, one projection 1152 -> 2560.
    # Checked against public copies of its config.json (found with the code search: a C# test that
    # quotes the original file, Rust config tests that restate it): the file names hidden 2560,
    # intermediate 10240, 34 layers, sliding_window 1024 and the vision tower; heads, KV heads, head
    # dim, vocab 262208 and the 1-in-6 pattern are Gemma3TextConfig's defaults.
    # tests/profiling/test_sliding_windows.py rebuilds this shape from those keys with transformers.
    layers = 34
    windows = tuple(None if (i + 1) % 6 == 0 else 1024 for i in range(layers))
    text = TextShape(hidden=2560, layers=layers, heads=8, kv_heads=4, head_dim=256, intermediate=10240, vocab=262208,
                     windows=windows)
    vision = VisionShape(hidden=1152, layers=27, heads=16, intermediate=4304, patch_in=3 * 14 * 14, patches=64 * 64,
                         extra_tokens=0, out_tokens=256, projector=((1152, 2560),), projector_tokens=256)
    return ModelShape("gemma-3-4b", text, vision)


PRESETS = {"llava-1.5-7b": llava_15_7b, "llava-1.5-13b": llava_15_13b, "qwen2-vl-7b": qwen2_vl_7b, "gemma-3-4b": gemma_3_4b}


def preset(name: str) -> ModelShape:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def shape_from_config(config, name: str = "model") -> ModelShape:
    """The shape of a transformers ``LlavaConfig`` (the tiny test models and the 7B bench model)."""
    t, v = config.text_config, config.vision_config
    heads = t.num_attention_heads
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // heads
    text = TextShape(t.hidden_size, t.num_hidden_layers, heads, t.num_key_value_heads or heads, head_dim, t.intermediate_size,
                     t.vocab_size, windows=declared_windows(t))
    grid = v.image_size // v.patch_size
    drop_cls = getattr(config, "vision_feature_select_strategy", "default") == "default"
    tokens = grid * grid if drop_cls else grid * grid + 1
    vision = VisionShape(
        hidden=v.hidden_size, layers=v.num_hidden_layers, heads=v.num_attention_heads, intermediate=v.intermediate_size,
        patch_in=v.num_channels * v.patch_size**2, patches=grid * grid, extra_tokens=1, out_tokens=tokens,
        projector=((v.hidden_size, t.hidden_size), (t.hidden_size, t.hidden_size)), projector_tokens=tokens,
    )
    return ModelShape(name, text, vision)


def declared_windows(text_config) -> tuple[int | None, ...]:
    """Per-layer windows a language model's config declares: its ``layer_types`` ("sliding_attention"
    layers get ``sliding_window``; Gemma 3, a Qwen2 with ``use_sliding_window``), else
    ``sliding_window`` on every layer (a Mistral), else none."""
    window = getattr(text_config, "sliding_window", None)
    if window is None:
        return ()
    kinds = getattr(text_config, "layer_types", None)
    if kinds:
        return tuple(window if kind == "sliding_attention" else None for kind in kinds) if "sliding_attention" in kinds else ()
    return (int(window),) * text_config.num_hidden_layers
