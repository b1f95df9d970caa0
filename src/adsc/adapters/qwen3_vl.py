"""Qwen3-VL (``Qwen3VLForConditionalGeneration``): Qwen2-VL's layout, per-frame video runs, DeepStack.

What differs from Qwen2-VL (:mod:`.qwen2_vl`, whose logic this subclass reuses):

* **Video.** The processor writes each temporal patch of a video as its own run of video tokens
  (``<t> <|vision_start|> frame <|vision_end|>``, timestamps between frames), and the model's
  ``get_rope_index`` splits ``video_grid_thw`` into one (1, h, w) grid per frame. adsc does the
  same: a video of ``t`` temporal patches becomes ``t`` spans of (h / 2, w / 2) tokens, so a
  selector keeps the same share of every frame and the timestamps stay text.
* **DeepStack.** The vision tower's intermediate features are added to the *outputs* of the
  first ``len(deepstack_visual_indexes)`` decoder layers at the vision positions
  (``Qwen3VLTextModel._deepstack_process`` with a (B, T) mask). Once a stage has dropped tokens
  the hidden states are (B, T_s) in kept-slot order, so the model's mask no longer fits them. adsc
  wraps that method (an instance attribute, removed by ``remove()``): inside a compressed stage it
  adds each *kept* vision token's own feature to its slot -- exactly what the unpatched model adds
  at that token's position -- and nothing for dropped tokens (they are gone). Pruning layers may
  therefore sit anywhere, before or inside the DeepStack layers.
* **M-RoPE** is interleaved (``mrope_interleaved``) but the rotary (cos, sin) reach the decoder
  layers as (B, T, head_dim) like Qwen2-VL's, so kept tokens keep their original 3-D positions
  by the engine's usual gather.
"""

from __future__ import annotations

import functools

import torch

from .base import UnsupportedModelError, VisionSpan
from .qwen2_vl import Qwen2VLAdapter


class Qwen3VLAdapter(Qwen2VLAdapter):
    name = "qwen3_vl"
    model_classes = ("Qwen3VLForConditionalGeneration",)
    model_types = ("qwen3_vl",)
    config_class = "Qwen3VLConfig"  # layouts by name: patch 16, 2 x 2 merge, temporal patch 2
    # the DeepStack mergers (model.visual.deepstack_merger_list) project intermediate tower features;
    # they are part of "vision" here, trained or frozen with the tower
    training_parts = {"llm": "model.language_model", "projector": "model.visual.merger", "vision": "model.visual"}
    # 576 = a 768 x 768 image (patch 16, 2 x 2 merge: 24 x 24 tokens)

    def layout(self, model, image_size=None, frames=None):
        """Qwen2-VL's arithmetic on Qwen3-VL's config; a video as one span per temporal patch, as the
        processor writes it (one run per frame between timestamps) and :meth:`vision_spans` reads it."""
        spans = super().layout(model, image_size, frames)
        return [VisionSpan(0, span.grid) for span in spans for _ in range(span.frames)]

    def vision_spans(self, model, input_ids, inputs):
        videos = inputs.get("video_grid_thw")
        if videos is not None:
            inputs = {**inputs, "video_grid_thw": per_frame(videos)}
        return super().vision_spans(model, input_ids, inputs)

    def attach(self, model):
        undo_rope = super().attach(model)
        text = self.core(model).language_model
        deepstack = len(model.config.vision_config.deepstack_visual_indexes)
        if deepstack >= len(text.layers):
            undo_rope()
            raise UnsupportedModelError(
                f"this Qwen3-VL adds DeepStack features after {deepstack} decoder layers but has only {len(text.layers)}: "
                "the last layer's output would get features after adsc restores the full sequence; use a model with more "
                "decoder layers than entries in vision_config.deepstack_visual_indexes"
            )
        original = text._deepstack_process
        handle_of = lambda: getattr(model, "_adsc_handle", None)  # noqa: E731  (set by compress(), after attach)

        @functools.wraps(original)
        def deepstack_on_kept_slots(hidden_states, visual_pos_masks, visual_embeds):
            handle = handle_of()
            table = None if handle is None else handle.prefill_stage()
            if table is None:  # before the first pruning layer, or uncompressed: the model's own step
                return original(hidden_states, visual_pos_masks, visual_embeds)
            return add_on_slots(hidden_states, visual_pos_masks, visual_embeds, table)

        text._deepstack_process = deepstack_on_kept_slots

        def undo():
            text.__dict__.pop("_deepstack_process", None)
            undo_rope()

        return undo


def per_frame(video_grid_thw: torch.Tensor) -> torch.Tensor:
    """One (1, h, w) row per temporal patch, as Qwen3-VL's get_rope_index splits videos."""
    frames = torch.repeat_interleave(video_grid_thw, video_grid_thw[:, 0], dim=0)
    frames[:, 0] = 1
    return frames


def add_on_slots(hidden: torch.Tensor, visual_pos_masks: torch.Tensor, visual_embeds: torch.Tensor, table) -> torch.Tensor:
    """``hidden`` (B, T_s, d) in ``table``'s slot order plus each kept vision token's DeepStack feature.

    ``visual_embeds`` holds one row per True of ``visual_pos_masks`` (B, T) in row-major order, as
    the model builds it; a slot takes the row of the original position it holds."""
    device = hidden.device
    mask = visual_pos_masks.to(device)
    row_of = (mask.flatten().cumsum(0) - 1).view_as(mask)  # row of visual_embeds per original position
    orig = table.orig.to(device)
    kept = mask.gather(1, orig) & table.valid.to(device)
    hidden = hidden.clone()
    hidden[kept] = hidden[kept] + visual_embeds.to(device, hidden.dtype)[row_of.gather(1, orig)[kept]]
    return hidden


class Qwen3VLMoeAdapter(Qwen3VLAdapter):
    """Qwen3-VL-MoE (``Qwen3VLMoeForConditionalGeneration``: Qwen3-VL-30B-A3B, -235B-A22B).

    Everything adsc touches is Qwen3-VL's, at the same module paths: the vision tower with its
    DeepStack mergers (``model.visual``), ``model.language_model`` with the same
    ``_deepstack_process`` and ``get_rope_index``, attention with per-head q / k norms (so the
    score baselines form q and k as for Qwen3-VL). Only the MLP differs: most layers hold a
    ``Qwen3VLMoeTextSparseMoeBlock`` (``mlp.gate`` a top-k router, ``mlp.experts`` the experts as
    3-D parameters ``gate_up_proj`` / ``down_proj``, not ``nn.Linear``). Routing is per token (no
    expert capacity), so dropping tokens changes no kept token's experts. LoRA on ``*_proj``
    modules reaches attention and the dense layers' MLP (``mlp_only_layers``), not the experts.

    Refused: the router auxiliary loss (``output_router_logits``): the model stacks every layer's
    router logits against the full-length attention mask, which compressed layers do not have.
    """

    name = "qwen3_vl_moe"
    model_classes = ("Qwen3VLMoeForConditionalGeneration",)
    model_types = ("qwen3_vl_moe",)
    config_class = "Qwen3VLMoeConfig"

    def attach(self, model):
        check_no_router_loss(model, {})
        return super().attach(model)

    def vision_spans(self, model, input_ids, inputs):
        check_no_router_loss(model, inputs)
        return super().vision_spans(model, input_ids, inputs)


def check_no_router_loss(model, inputs: dict) -> None:
    asked = inputs.get("output_router_logits")
    if asked or (asked is None and getattr(model.config.get_text_config(), "output_router_logits", False)):
        raise UnsupportedModelError(
            "Qwen3-VL-MoE with output_router_logits=True: the router auxiliary loss stacks every decoder layer's router "
            "logits against the full-length attention mask, and compressed layers route fewer tokens; set "
            "output_router_logits=False (config.text_config and the forward's argument) to compress this model"
        )
