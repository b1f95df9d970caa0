"""Loading a model by hub id or path, building prompts, and batched greedy generation."""

from __future__ import annotations

import os

import torch

from ..adapters import UnsupportedModelError, adapter_for
from .benchmarks.base import DataError, EvaluationInputError

DEFAULT_TEMPLATE = "USER: <image>\n{text} ASSISTANT:"  # llava-hf's LLaVA-1.5 chat format


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin", "pytorch_model.pt")
CONVERT = ("convert it once, where you trust the file: AutoModelForImageTextToText.from_pretrained(path, "
           "use_safetensors=False).save_pretrained(path) (transformers >= 5 writes model.safetensors; older "
           "versions need save_pretrained(path, safe_serialization=True))")


def check_safetensors(name_or_path: str) -> None:
    """Evaluation loads safetensors only: a pickle (.bin) checkpoint can run code when loaded."""
    if not os.path.isdir(name_or_path):
        return  # a hub id: from_pretrained(use_safetensors=True) refuses a pickle-only repository
    files = os.listdir(name_or_path)
    if any(f.endswith(".safetensors") or f in WEIGHT_FILES for f in files):
        return
    pickles = [f for f in files if f in PICKLE_FILES or f.endswith((".bin", ".pt", ".pth"))]
    if pickles:
        raise EvaluationInputError(f"{name_or_path} holds pickle weights only ({', '.join(sorted(pickles))}); "
                                   f"adsc eval loads safetensors only: {CONVERT}")
    raise EvaluationInputError(f"{name_or_path} holds no model weights (*.safetensors); save the model there "
                               "with save_pretrained, or pass a hub id")


def load_model(name_or_path: str, dtype: str = "auto", device: str | None = None, attn: str | None = None):
    """(model, processor) from a hub id or a local directory saved with save_pretrained; safetensors only."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    check_safetensors(name_or_path)
    config = AutoConfig.from_pretrained(name_or_path)
    kind = config.model_type
    if kind == "llava":
        from transformers import LlavaForConditionalGeneration as cls
    elif kind == "qwen2_vl":
        from transformers import Qwen2VLForConditionalGeneration as cls
    elif kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLForConditionalGeneration as cls
    else:
        cls = AutoModelForImageTextToText
    kwargs = {"dtype": _dtype(dtype, device), "use_safetensors": True}
    if attn:
        kwargs["attn_implementation"] = attn
    try:
        model = cls.from_pretrained(name_or_path, **kwargs)
    except OSError as err:
        if "safetensors" not in str(err):
            raise
        raise EvaluationInputError(f"{name_or_path}: no safetensors weights ({err}); adsc eval loads safetensors "
                                   f"only: {CONVERT}") from None
    if device:
        model = model.to(device)
    processor = AutoProcessor.from_pretrained(name_or_path)
    return model.eval(), processor


def _dtype(name: str, device: str | None):
    if name == "auto":  # bf16 on a GPU as LLaVA's fp16/bf16 eval; fp32 on CPU where bf16 is slow
        return torch.bfloat16 if device and device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[name]


def pad_to_square(image, fill):
    """LLaVA-1.5's expand2square: pad the short side with the processor's mean colour, centred."""
    from PIL import Image

    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    out = Image.new(image.mode, (side, side), fill)
    out.paste(image, ((side - w) // 2, (side - h) // 2))
    return out


class Generator:
    """Greedy decoding over padded batches (left padding; the engine handles the masks).

    ``template``: "auto" uses the processor's chat template when it has one, else
    ``DEFAULT_TEMPLATE``; any other string must contain ``{text}`` (and ``<image>`` where the
    image goes). Text-only samples drop the ``<image>\\n`` part.
    """

    def __init__(self, model, processor, template: str = "auto", pad_square: bool | None = None):
        self.model, self.processor = model, processor
        self.template = template
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        if pad_square is None:  # the family's own preprocessing (LLaVA-1.5 pads; Qwen2-VL keeps the shape)
            pad_square = _family_pads_to_square(model)
        self.pad_square = pad_square
        mean = getattr(getattr(processor, "image_processor", None), "image_mean", None) or (0.5, 0.5, 0.5)
        self.fill = tuple(int(round(255 * m)) for m in mean)
        self.image_token_id = getattr(model.config, "image_token_id", None) or getattr(model.config, "image_token_index", None)
        self.vision_tokens_per_image: int | None = None

    def describe(self) -> dict:
        return {"template": self.template, "pad_square": self.pad_square, "chat_template": self._use_chat_template()}

    def _use_chat_template(self) -> bool:
        return self.template == "auto" and bool(getattr(self.processor, "chat_template", None))

    def prompt(self, text: str, has_image: bool) -> str:
        if self._use_chat_template():
            content = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": text}]
            return self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        template = DEFAULT_TEMPLATE if self.template == "auto" else self.template
        if not has_image:
            template = template.replace("<image>\n", "").replace("<image>", "")
        return template.replace("{text}", text)

    def load_image(self, path: str):
        from PIL import Image

        with Image.open(path) as im:
            return self.load_image_obj(im)

    def _sample_image(self, sample):
        try:
            return self.load_image(sample.image)
        except Exception as err:  # checked up front; a file changed since then still names its question
            raise DataError(f"image for question {sample.id!r} cannot be read: {sample.image} "
                            f"({type(err).__name__}: {err}); restore it from the official download") from None

    def load_image_obj(self, image):
        image = image.convert("RGB")
        return pad_to_square(image, self.fill) if self.pad_square else image

    def __call__(self, samples) -> tuple[list[str], list[str], int]:
        """Answers (stripped), the prompts used, and the number of new tokens generated."""
        prompts = [self.prompt(s.text, s.image is not None) for s in samples]
        images = [self._sample_image(s) for s in samples if s.image is not None]
        texts, n_new = self.generate(prompts, images, max(s.max_new_tokens for s in samples))
        return texts, prompts, n_new

    def encode(self, prompts: list[str], images: list):
        """Processor inputs on the model's device; images in the order of their <image> markers."""
        inputs = self.processor(images=images or None, text=prompts, return_tensors="pt", padding=True)
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        if self.vision_tokens_per_image is None and images and self.image_token_id is not None:
            self.vision_tokens_per_image = int((inputs["input_ids"] == self.image_token_id).sum()) // len(images)
        return inputs

    @torch.no_grad()
    def generate(self, prompts: list[str], images: list, max_new_tokens: int) -> tuple[list[str], int]:
        inputs = self.encode(prompts, images)
        out = self.model.generate(
            **inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
        )
        new = out[:, inputs["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [t.strip() for t in texts], int((new != self.tokenizer.pad_token_id).sum())


def _family_pads_to_square(model) -> bool:
    """The adapter's ``pad_to_square``; False for a model adsc has no adapter for (it is not compressed)."""
    try:
        return adapter_for(model).pad_to_square
    except UnsupportedModelError:
        return False
