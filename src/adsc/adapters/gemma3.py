"""Gemma 3 (``Gemma3ForConditionalGeneration``): local / global layers, bidirectional image attention.

Layout: every image (and every pan-and-scan crop, which the processor writes as an image of its
own) is ``mm_tokens_per_image`` image tokens -- 256 = 16 x 16 for the released models (SigLIP at
896 px, 64 x 64 patches average-pooled 4 x 4) -- between ``<start_of_image>`` and
``<end_of_image>``. The two markers are ordinary text tokens for adsc (kept, never counted), so a
span is exactly the square grid of one image.

Attention, per decoder layer (``text_config.layer_types``), as the model builds it:

* global layers ("full_attention"): causal OR same image block;
* local layers ("sliding_attention"): (causal OR same image block) AND ``q - k < sliding_window``;

where an image block is a maximal run of ``token_type_ids == 1`` (the processor's, one per
image), numbered by the model's own ``get_block_sequence_ids_for_mask``; without
``token_type_ids`` (decode steps, or a caller that omits them) the model is causal and so is
adsc. A compressed stage keeps exactly this: the window is measured in *original* positions (a
dropped token does not pull older keys into the window) and the kept tokens of one image still
see each other both ways. The two kinds of layer also rotate with different RoPE bases, which
:meth:`Gemma3Adapter.rotary_kind` tells the engine.

Caches: a sliding-window cache layer (what ``generate`` makes for Gemma 3) keeps the last
``sliding_window - 1`` *slots*; in a compressed stage those span more original positions than
that, so they hold every key the window lets a query see, and the stage mask over them applies
the window (``engine.hooks.sliding_tail``). ``StageCache`` refuses models with sliding layers.
"""

from __future__ import annotations

import math

from .base import Adapter, AttentionPattern, UnsupportedModelError, VisionSpan, token_runs


class Gemma3Adapter(Adapter):
    name = "gemma3"
    model_classes = ("Gemma3ForConditionalGeneration",)
    model_types = ("gemma3",)
    fixed_grid = True  # every image (or crop) is mm_tokens_per_image tokens
    images_per_prompt = True  # Gemma3Processor: a flat image list is one prompt's images
    config_class = "Gemma3Config"  # layouts by name: the released 896 px, 256-token images
    training_parts = {"llm": "model.language_model", "projector": "model.multi_modal_projector", "vision": "model.vision_tower"}

    def vision_token_ids(self, model):
        return (model.config.image_token_id,)

    def image_placeholder(self, processor):
        """Gemma3Processor expands ``<start_of_image>`` (its ``boi_token``) into the image's soft tokens;
        its ``image_token`` has been the soft token itself in some transformers releases."""
        return processor.boi_token

    def _side(self, model) -> int:
        tokens = model.config.mm_tokens_per_image
        side = math.isqrt(tokens)
        if side * side != tokens:
            raise UnsupportedModelError(f"Gemma 3 with mm_tokens_per_image={tokens}: adsc needs a square grid of image tokens")
        return side

    def reference_vision_tokens(self, model):
        """256 for the released models: one 896 x 896 image, 16 x 16 tokens after pooling."""
        return self._side(model) ** 2

    def layout(self, model, image_size=None, frames=None):
        """One square grid whatever the image size (the processor resizes every image, and every
        pan-and-scan crop, to the tower's input); Gemma 3 takes no video."""
        if frames is not None:
            raise ValueError("Gemma 3 takes images only, no video: leave out --video-frames")
        side = self._side(model)
        return [VisionSpan(0, (side, side))]

    def attach(self, model):
        if getattr(self.text_config(model), "use_bidirectional_attention", False):
            raise UnsupportedModelError(
                "this Gemma 3 has use_bidirectional_attention=True (every token attends every other, as in an embedding "
                "model): adsc compresses generative decoders only, whose stage masks stay causal outside image blocks"
            )
        return lambda: None

    def mask_pattern(self, model, layer_index):
        text = self.text_config(model)
        kind = text.layer_types[layer_index]
        if kind == "sliding_attention":
            return AttentionPattern(window=text.sliding_window, image_blocks=True)
        if kind == "full_attention":
            return AttentionPattern(image_blocks=True)
        return kind  # a kind adsc has no mask for: check_pattern refuses it by name

    def rotary_kind(self, model, layer_index):
        return self.text_config(model).layer_types[layer_index]  # local and global layers have their own RoPE

    def attention_blocks(self, model, input_ids, inputs):
        """The model's image blocks from ``token_type_ids``, by its own helper (None without them)."""
        from transformers.models.gemma3.modeling_gemma3 import get_block_sequence_ids_for_mask

        token_type_ids = inputs.get("token_type_ids")
        if token_type_ids is None:
            return None
        return get_block_sequence_ids_for_mask(token_type_ids, device=input_ids.device)

    def vision_spans(self, model, input_ids, inputs):
        side = self._side(model)
        per_image = side * side
        spans = []
        for b, row in enumerate(input_ids.tolist()):  # one device read for the batch
            sample = []
            for start, length, _ in token_runs(row, self.vision_token_ids(model)):
                if length % per_image:
                    raise ValueError(
                        f"sample {b} has a run of {length} image tokens at {start}, not a multiple of mm_tokens_per_image "
                        f"({per_image}): pass the processor's input_ids (each image is {per_image} image tokens between "
                        "<start_of_image> and <end_of_image>)"
                    )
                sample += [VisionSpan(start + k, (side, side)) for k in range(0, length, per_image)]
            spans.append(sample)
        return spans

