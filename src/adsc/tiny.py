"""Tiny random models of the supported architectures, built from configs (no download).

Used by the tests, the demo and the CPU benchmarks. Shapes are real in kind (a CLIP-style
vision tower with a square patch grid, a Llama decoder), small in size.
"""

from __future__ import annotations

import torch

from .processors import images_only_video_slot

IMAGE_TOKEN = 31
VIDEO_TOKEN = 30
VISION_START = 29
VISION_END = 28
PAD = 0


def decoder_fields(layers: int, hidden: int, heads: int, kv_heads: int, vocab: int = 512) -> dict:
    """The text-config fields every tiny decoder here shares (sizes, 4096 positions, PAD / BOS 1 / EOS 2), so that a
    family's builder states only what its decoder has besides (M-RoPE sections, ...)."""
    return dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096,
                pad_token_id=PAD, bos_token_id=1, eos_token_id=2)


def _llama_and_clip(layers, hidden, heads, kv_heads, image_size, patch, vocab):
    """(text, vision) configs of the LLaVA-style tiny models: a Llama decoder, a CLIP tower with a square patch grid."""
    from transformers import CLIPVisionConfig, LlamaConfig

    text = LlamaConfig(**decoder_fields(layers, hidden, heads, kv_heads, vocab))
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch,
        projection_dim=32,
    )
    return text, vision


def _random(model_class, config, attn: str, seed: int):
    config.pad_token_id = PAD
    torch.manual_seed(seed)
    config._attn_implementation = attn
    model = model_class(config)
    model.set_attn_implementation(attn)
    return model.eval()


def tiny_llava(
    layers: int = 6,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    image_size: int = 48,
    patch: int = 8,
    vocab: int = 512,
    attn: str = "sdpa",
    seed: int = 0,
):
    """A random LlavaForConditionalGeneration; (image_size / patch)^2 vision tokens per image."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    text, vision = _llama_and_clip(layers, hidden, heads, kv_heads, image_size, patch, vocab)
    config = LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=IMAGE_TOKEN,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    return _random(LlavaForConditionalGeneration, config, attn, seed)


def tiny_llava_next(layers: int = 6, image_size: int = 48, patch: int = 8, pinpoints=((48, 96), (96, 48), (96, 96)),
                    attn: str = "sdpa", seed: int = 0, hidden: int = 64, heads: int = 4, kv_heads: int = 2,
                    sliding_window: int | None = None):
    """A random LlavaNextForConditionalGeneration (anyres): per image a (image_size / patch)^2 base
    grid, then the high-res tiles of the best of ``pinpoints`` (e.g. a 96 x 96 image: 2 x 2 tiles
    -> a 12 x 12 map plus one image-newline token per row; 36 + 12 * 13 = 192 image tokens).
    ``sliding_window``: a Mistral decoder with that window on every layer (LLaVA-1.6-Mistral's
    shape; the released one sets none) instead of the Llama one."""
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration, MistralConfig

    text, vision = _llama_and_clip(layers, hidden, heads, kv_heads, image_size, patch, 512)
    if sliding_window is not None:
        same = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "max_position_embeddings", "pad_token_id", "bos_token_id", "eos_token_id")
        text = MistralConfig(**{k: getattr(text, k) for k in same}, head_dim=hidden // heads, sliding_window=sliding_window)
    config = LlavaNextConfig(
        text_config=text, vision_config=vision, image_token_index=IMAGE_TOKEN, vision_feature_layer=-1,
        vision_feature_select_strategy="default", image_grid_pinpoints=[list(p) for p in pinpoints],
        projector_hidden_act="gelu",
    )
    return _random(LlavaNextForConditionalGeneration, config, attn, seed)


def tiny_qwen2_vl(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, attn: str = "sdpa", seed: int = 0):
    """A random Qwen2VLForConditionalGeneration with a 2x2 spatial merge (patch 14)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    head_dim = hidden // heads
    config = Qwen2VLConfig(
        text_config=dict(
            **decoder_fields(layers, hidden, heads, kv_heads),
            rope_parameters={"rope_type": "default", "mrope_section": _mrope_sections(head_dim), "rope_theta": 10000.0},
        ),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=hidden, num_heads=2, patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2, in_chans=3),
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        vision_start_token_id=VISION_START,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.set_attn_implementation(attn)
    return model.eval()


def _mrope_sections(head_dim: int) -> list[int]:
    """Split head_dim / 2 rotary frequencies over (time, height, width) like Qwen2-VL's 16/24/24."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


DEFAULT_WORDS = (
    "a an the is are of in on at to and or not no yes what which where how many color shape "
    "there image picture object left right top bottom above below red green blue yellow purple "
    "orange white black gray circle square triangle star big small large text say says read "
    "answer question with single word phrase option letter from given choices directly "
    "reference ocr token context chat between curious user artificial intelligence assistant "
    "gives helpful detailed polite answers user's questions user assistant"
).split()


LLAVA_MARKERS = {"<vision_start>": VISION_START, "<video>": VIDEO_TOKEN, "<image>": IMAGE_TOKEN}
QWEN_MARKERS = {"<|vision_start|>": VISION_START, "<|video_pad|>": VIDEO_TOKEN, "<|image_pad|>": IMAGE_TOKEN,
                "<|vision_end|>": VISION_END}


def tiny_tokenizer(words=DEFAULT_WORDS, vocab_size: int | None = None, markers: dict | None = None):
    """A word-level fast tokenizer with LLaVA's special tokens; unknown words map to <unk>.

    Ids 0-3 are <pad> <s> </s> <unk>; 28-31 are the vision markers of the tiny models (``markers``:
    LLaVA's names by default, QWEN_MARKERS for Qwen2-VL); words, punctuation, digits and single
    letters fill the rest.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    markers = LLAVA_MARKERS if markers is None else markers
    vocab = {"<pad>": PAD, "<s>": 1, "</s>": 2, "<unk>": 3, **markers}
    filler = list(".,:;?!'\"()-\n") + [str(d) for d in range(10)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    filler += [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["USER", "ASSISTANT", "Context", "Answer", "Reference"]
    next_id = 4
    for w in filler + [v for w in words for v in (w, w.capitalize())]:
        if w in vocab:
            continue
        while next_id in vocab.values():
            next_id += 1
        vocab[w] = next_id
        next_id += 1
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Replace("\n", " \n ")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(pattern=" ", behavior="removed"), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    if markers is not LLAVA_MARKERS:  # marker tokens that may touch their neighbours, as Qwen's prompts write them
        tok.add_special_tokens([AddedToken(m, special=True, normalized=False) for m in markers])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"} if markers is LLAVA_MARKERS else {},
    )
    if vocab_size is not None and len(vocab) > vocab_size:
        raise ValueError(f"{len(vocab)} words do not fit a vocabulary of {vocab_size}")
    return fast


def tiny_llava_processor(image_size: int = 48, patch: int = 8, words=DEFAULT_WORDS):
    """A LlavaProcessor for :func:`tiny_llava`: CLIP-style preprocessing, "<image>" expanded to the grid."""
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    images = CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    return LlavaProcessor(
        image_processor=images, tokenizer=tiny_tokenizer(words), patch_size=patch, vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLIP tower's CLS token, dropped by the "default" strategy
    )


def tiny_chat_template(image_marker: str) -> str:
    """A minimal chat template (user / assistant turns, the image as ``image_marker``), as hub
    processors carry one: what ``--template chat_template`` (training) and evaluation render with."""
    return (
        "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}" + image_marker + "{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n"
        "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )


QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def tiny_llava_next_processor(image_size: int = 48, patch: int = 8, pinpoints=((48, 96), (96, 48), (96, 96)),
                              words=DEFAULT_WORDS):
    """A LlavaNextProcessor for :func:`tiny_llava_next`: anyres crops, "<image>" expanded to base grid + tile map."""
    from transformers import LlavaNextProcessor
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    images = LlavaNextImageProcessorPil(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                                        image_grid_pinpoints=[list(p) for p in pinpoints])
    return LlavaNextProcessor(image_processor=images, tokenizer=tiny_tokenizer(words), patch_size=patch,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1)


def tiny_qwen2_5_vl(layers: int = 6, hidden: int = 64, heads: int = 4, kv_heads: int = 2, attn: str = "sdpa", seed: int = 0):
    """A random Qwen2_5_VLForConditionalGeneration (windowed vision attention, 2x2 merge)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=dict(
            **decoder_fields(layers, hidden, heads, kv_heads),
            rope_parameters={"rope_type": "default", "mrope_section": _mrope_sections(hidden // heads), "rope_theta": 10000.0},
        ),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1]),
        image_token_id=IMAGE_TOKEN, video_token_id=VIDEO_TOKEN, vision_start_token_id=VISION_START,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.set_attn_implementation(attn)
    return model.eval()


def tiny_qwen2_vl_processor(max_pixels: int = 112 * 112, words=DEFAULT_WORDS, processor_class: str = "Qwen2VLProcessor"):
    """A Qwen2VLProcessor for :func:`tiny_qwen2_vl` (patch 14, 2x2 merge; images of at most ``max_pixels``);
    ``processor_class="Qwen2_5_VLProcessor"`` for :func:`tiny_qwen2_5_vl` (the same image and video processors)."""
    import transformers
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    Qwen2VLProcessor = getattr(transformers, processor_class)

    images = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=max_pixels, patch_size=14, merge_size=2,
                                      temporal_patch_size=2)
    video = images_only_video_slot("Qwen2-VL")  # transformers' video processor is torchvision-only
    if video is None:
        from transformers import Qwen2VLVideoProcessor

        video = Qwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=max_pixels, patch_size=14, merge_size=2,
                                      temporal_patch_size=2)
    return Qwen2VLProcessor(image_processor=images, tokenizer=tiny_tokenizer(words, markers=QWEN_MARKERS),
                            video_processor=video)
