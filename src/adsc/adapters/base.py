"""Everything adsc knows about an architecture, in one place per family.

For the engine an adapter finds the module whose forward sees ``input_ids`` (where vision-token
positions are read), the decoder layers of the language model, and the image grids behind each
run of vision tokens. For the rest of the package it holds the family's facts that callers must
not guess: the module paths training freezes or trains (:attr:`Adapter.training_parts`), the
vision tokens of the reference image a budget refers to (:meth:`Adapter.reference_vision_tokens`),
prompt defaults (:attr:`Adapter.train_template`, :attr:`Adapter.pad_to_square`,
:meth:`Adapter.image_placeholder`), and how to form a
layer's queries and keys for the score-based methods (:meth:`Adapter.queries`, :meth:`Adapter.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class UnsupportedModelError(TypeError):
    pass


class ImageSizeNeeded(ValueError):
    """:meth:`Adapter.layout` was given no image size where the family's token count follows it; the
    message says why (``adsc.layouts`` adds the CLI fix, ``--layout FAMILY:HEIGHTxWIDTH``)."""


@dataclass(frozen=True)
class AttentionPattern:
    """What a decoder layer's queries may see besides earlier tokens, in *original* positions.

    ``window``: a sliding window -- query q sees key k only if ``q - k < window`` (Gemma 3's
    local layers; transformers' ``sliding_window_overlay``), measured in positions of the
    uncompressed sequence, so dropping tokens never widens a window. ``image_blocks``: the tokens
    of one image block (the adapter's :meth:`Adapter.attention_blocks`) see each other in both
    directions during prefill (Gemma 3's bidirectional image attention); the window still applies.
    The plain causal pattern is ``CAUSAL``, the one every other family uses.
    """

    window: int | None = None
    image_blocks: bool = False


CAUSAL = AttentionPattern()


@dataclass(frozen=True)
class VisionSpan:
    """One image (or tile, thumbnail, video) of one sample: where its grid tokens sit.

    ``grid`` = (rows, cols) per frame and ``frames`` frames; grid token k in raster order over
    (frame, row, col) is :meth:`cell` (k) and sits at sequence position ``positions[k]``
    (``None``: contiguous from ``start``, as a LLaVA-1.5 or Qwen2-VL image). ``extra`` are
    positions inside the image's run that are *not* grid tokens -- e.g. LLaVA-NeXT's
    image-newline tokens or row / column separators: the engine treats them like text (never
    dropped, not counted as vision tokens in any budget), because they mark layout that the kept
    grid tokens still need. Selectors choose among grid tokens only.
    """

    start: int
    grid: tuple[int, int]
    frames: int = 1
    positions: tuple[int, ...] | None = None
    extra: tuple[int, ...] = ()

    def __post_init__(self):
        if self.positions is not None and len(self.positions) != self.length:
            raise ValueError(f"a span of {self.length} grid tokens needs {self.length} positions, got {len(self.positions)}")

    @property
    def length(self) -> int:
        """Grid tokens of the span (``extra`` tokens not included)."""
        return self.frames * self.grid[0] * self.grid[1]

    def token_positions(self, device=None) -> torch.Tensor:
        """(length,) sequence positions of the grid tokens, raster order over (frame, row, col)."""
        if self.positions is None:
            return torch.arange(self.start, self.start + self.length, device=device)
        return torch.tensor(self.positions, dtype=torch.long, device=device)

    def cell(self, k: int) -> tuple[int, int, int]:
        """(frame, row, col) of grid token ``k`` (raster order)."""
        frame, rest = divmod(k, self.grid[0] * self.grid[1])
        return (frame, *divmod(rest, self.grid[1]))


class Adapter:
    """Defaults fit a Llama-style language model inside ``model.model.language_model``.

    Attributes:
        training_parts: dotted paths inside the transformers model of the language model
            ("llm"), the projector and the vision encoder, as training freezes / trains them.
        train_template: the prompt format training uses for template "auto".
        pad_to_square: whether the family's own preprocessing pads images to a square
            (LLaVA-1.5's "image_aspect_ratio: pad") before the processor.
        images_per_prompt: whether the family's processor takes a batch's images as one list
            per prompt (Gemma 3's reads a flat list as the images of a single prompt).
    """

    name: str = ""
    model_classes: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()  # config.model_type values, to find the adapter from a config alone
    fixed_grid: bool = False  # every image has the same grid (so reference_vision_tokens is exact)
    config_class: str = ""  # the transformers config whose defaults are the released model (layouts by name)
    training_parts: dict[str, str] = {}
    train_template: str = "chat_template"
    pad_to_square: bool = False
    images_per_prompt: bool = False

    def core(self, model: nn.Module) -> nn.Module:
        """The multimodal module whose forward receives input_ids and the image inputs."""
        return model.model

    def decoder_layers(self, model: nn.Module) -> nn.ModuleList:
        return model.model.language_model.layers

    def text_config(self, model: nn.Module):
        return model.config.get_text_config()

    def mask_pattern(self, model: nn.Module, layer_index: int) -> str:
        """The attention pattern decoder layer ``layer_index`` uses, which its stage mask must keep.

        Causal by default; a family with sliding-window layers or bidirectional attention among
        image tokens returns its :class:`AttentionPattern` here, and the engine refuses anything
        else it cannot build a stage mask for (``engine.state.check_pattern``).
        """
        return CAUSAL

    def attention_blocks(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> torch.Tensor | None:
        """(B, T) block id of every token for layers whose pattern has ``image_blocks``: tokens with
        the same id >= 0 attend each other bidirectionally, -1 marks tokens outside every block.
        None (the default): no blocks in this forward, those layers are causal."""
        return None

    def rotary_kind(self, model: nn.Module, layer_index: int) -> str:
        """Layers of one kind receive the same rotary (cos, sin) from the model; the engine gathers
        them once per stage and kind. One kind unless a family rotates layers differently (Gemma 3's
        local and global layers use different RoPE bases)."""
        return ""

    def attach(self, model: nn.Module):
        """Architecture-specific checks installed by compress(); returns the callable that undoes them."""
        return lambda: None

    def image_placeholder(self, processor) -> str:
        """The text that stands for one image in a prompt the family's processor expands (what a
        prompt written without a chat template must contain): ``processor.image_token`` by default
        (LLaVA's ``<image>``, InternVL's ``<IMG_CONTEXT>``, Idefics3's ``<image>``, Pixtral's ``[IMG]``);
        LLaVA's ``<image>`` for a processor that names none."""
        return getattr(processor, "image_token", None) or "<image>"

    def vision_token_ids(self, model: nn.Module) -> tuple[int, ...]:
        raise NotImplementedError

    def vision_spans(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> list[list[VisionSpan]]:
        """Per sample, the vision-token runs in order, each with its grid."""
        raise NotImplementedError

    def item_grid(self, config, modality: str, item: dict) -> tuple[int, int, int]:
        """(frames, rows, cols) of one image or video item's vision tokens, from the model config and
        the processor's outputs for that item alone (``image_grid_thw`` etc., tensors): what a
        serving engine plans an item by before any forward (one frame for an image)."""
        raise NotImplementedError(f"{type(self).__name__} cannot give an item's grid from the config alone")

    def reference_vision_tokens(self, model: nn.Module) -> int:
        """Vision tokens of the reference image a budget refers to (``CompressionConfig.vision_tokens``)."""
        raise NotImplementedError

    def layout_configs(self) -> dict[str, object]:
        """Released models by the layout name ``adsc schedule --layout NAME`` takes -> a function making
        that model's config: the defaults of :attr:`config_class` under the adapter's name, unless a
        family's defaults are not a released model (then the family lists its own)."""
        if not self.config_class:
            return {}
        import transformers

        return {self.name: getattr(transformers, self.config_class)}

    def layout(self, model, image_size: tuple[int, int] | None = None, frames: int | None = None) -> list[VisionSpan]:
        """The spans of one image of ``image_size`` = (height, width), or with ``frames`` one video of
        that many input frames (of that size where the family resizes frames), at positions from 0.

        From ``model.config`` alone (a ``SimpleNamespace(config=...)`` will do) and through the same
        code as :meth:`vision_spans`, so that ``adsc schedule`` / ``adsc profile`` count exactly what
        the engine sees. ValueError for what the family does not take (e.g. video).
        """
        raise ValueError(f"adsc has no token layout for {self.name} images or videos")

    # ------------------------------------------------------------------ q/k for score-based methods
    def queries(self, layer: nn.Module, hidden: torch.Tensor, position_embeddings) -> torch.Tensor:
        """(B, heads, T, head_dim) float32 queries ``layer`` forms from its input ``hidden`` (B, T, d),
        rotated by ``position_embeddings`` = (cos, sin) of those tokens."""
        attn = layer.self_attn
        q = _heads(attn.q_proj, layer.input_layernorm(hidden), attn.head_dim)
        if getattr(attn, "q_norm", None) is not None:  # per-head q/k norms (Qwen3, Gemma 3) come before RoPE
            q = attn.q_norm(q)
        return _rotate(q, *expand_to_batch(position_embeddings, hidden.shape[0])).float()

    def keys(self, layer: nn.Module, hidden: torch.Tensor, position_embeddings=None) -> torch.Tensor:
        """(B, kv_heads, T, head_dim) float32 keys of ``layer``; before RoPE when ``position_embeddings`` is None."""
        attn = layer.self_attn
        k = _heads(attn.k_proj, layer.input_layernorm(hidden), attn.head_dim)
        if getattr(attn, "k_norm", None) is not None:
            k = attn.k_norm(k)
        if position_embeddings is not None:
            k = _rotate(k, *expand_to_batch(position_embeddings, hidden.shape[0]))
        return k.float()

    def attention_scaling(self, layer: nn.Module) -> float:
        """The factor ``layer`` multiplies q . k by before the softmax."""
        return layer.self_attn.scaling


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE as Llama-style models apply it: x * cos + rotate_half(x) * sin, cos/sin (B, T, hd)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def _heads(proj: nn.Module, x: torch.Tensor, head_dim: int) -> torch.Tensor:
    batch, length, _ = x.shape
    return proj(x).view(batch, length, -1, head_dim).transpose(1, 2)  # (B, heads, T, hd)


def expand_to_batch(pos, batch: int):
    """(cos, sin) broadcast over a batch of ``batch`` (models may give them for one row)."""
    return tuple(t.expand(batch, *t.shape[1:]) if t.shape[0] != batch else t for t in pos)


def token_runs(row, token_ids: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(start, length, token_id) of every maximal run of any of ``token_ids`` in a 1-D id row: a
    list of ints (callers read the whole batch once, ``input_ids.tolist()``: one device read per
    prefill instead of three per sample) or a tensor (read here)."""
    ids = row.tolist() if torch.is_tensor(row) else row
    wanted = set(token_ids)
    runs = []
    start = None
    for p, token in enumerate(ids + [None]):  # plain Python on a few hundred ints
        if start is not None and token == ids[start]:
            continue
        if start is not None:
            runs.append((start, p - start, ids[start]))
        start = p if token in wanted else None
    return runs
