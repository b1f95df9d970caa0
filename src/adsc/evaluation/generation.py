"""Loading a model by hub id or path, building prompts, and batched greedy generation."""

from __future__ import annotations

import contextlib

import torch
from PIL import Image

from .. import loading
from ..adapters import Adapter, UnsupportedModelError, adapter_for
from ..images import pad_to_square
from ..loading import ModelFileError
from .benchmarks.base import DataError, EvaluationInputError

# llava-hf's LLaVA-1.5 chat format; for another family "<image>" becomes its own placeholder (Generator.image_marker)
DEFAULT_TEMPLATE = "USER: <image>\n{text} ASSISTANT:"


@contextlib.contextmanager
def _input_error():
    """adsc.loading's refusals as this package's input errors (one-line CLI errors, exit 2)."""
    try:
        yield
    except ModelFileError as err:
        raise EvaluationInputError(str(err)) from None


def check_safetensors(name_or_path: str) -> None:
    """Evaluation loads safetensors only: a pickle (.bin) checkpoint can run code when loaded."""
    with _input_error():
        loading.check_safetensors(name_or_path)


def load_model(name_or_path: str, dtype: str = "auto", device: str | None = None, attn: str | None = None):
    """(model, processor) from a hub id or a local directory saved with save_pretrained; safetensors only."""
    with _input_error():
        model = loading.load_model(name_or_path, _dtype(dtype, device), attn, device)
    return model.eval(), loading.load_processor(name_or_path)


def _dtype(name: str, device: str | None):
    if name == "auto":  # bf16 on a GPU as LLaVA's fp16/bf16 eval; fp32 on CPU where bf16 is slow
        return torch.bfloat16 if device and device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[name]


class Generator:
    """Greedy decoding over padded batches (left padding; the engine handles the masks).

    ``template``: "auto" uses the processor's chat template when it has one, else
    ``DEFAULT_TEMPLATE`` with the family's own image placeholder (:attr:`image_marker`, e.g.
    Qwen2-VL's ``<|vision_start|><|image_pad|><|vision_end|>``) for its ``<image>``; any other
    string must contain ``{text}`` (and, where the image goes, the text the processor expands:
    ``<image>`` for LLaVA). Text-only samples drop the ``<image>\\n`` part.
    """

    def __init__(self, model, processor, template: str = "auto", pad_square: bool | None = None, compile=False):
        self.model, self.processor = model, processor
        self.decoding = CompiledDecoding(model, compile) if compile else None
        self.template = template
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        if pad_square is None:  # the family's own preprocessing (LLaVA-1.5 pads; Qwen2-VL keeps the shape)
            pad_square = _family_pads_to_square(model)
        self.pad_square = pad_square
        self.images_per_prompt = _family_fact(model, "images_per_prompt")
        self.image_marker = _image_placeholder(model, processor)
        self.mean = getattr(getattr(processor, "image_processor", None), "image_mean", None) or (0.5, 0.5, 0.5)
        self.image_token_id = getattr(model.config, "image_token_id", None) or getattr(model.config, "image_token_index", None)
        self.vision_tokens_per_image: int | None = None

    def describe(self) -> dict:
        out = {"template": self.template, "pad_square": self.pad_square, "chat_template": self._use_chat_template()}
        if self.decoding is not None:  # in the fingerprint: compiled kernels and bucket padding differ in numerics
            out["compiled_decode"] = {"pad_to_multiple_of": self.decoding.pad_to_multiple_of}
        return out

    def _use_chat_template(self) -> bool:
        return self.template == "auto" and bool(getattr(self.processor, "chat_template", None))

    def prompt(self, text: str, has_image: bool) -> str:
        if self._use_chat_template():
            content = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": text}]
            return self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        template = DEFAULT_TEMPLATE if self.template == "auto" else self.template
        if not has_image:
            template = template.replace("<image>\n", "").replace("<image>", "")
        elif self.template == "auto":
            template = template.replace("<image>", self.image_marker)
        return template.replace("{text}", text)

    def load_image(self, path: str):
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
        return pad_to_square(image, self.mean) if self.pad_square else image

    def __call__(self, samples) -> tuple[list[str], list[str], int]:
        """Answers (stripped), the prompts used, and the number of new tokens generated."""
        prompts = [self.prompt(s.text, s.image is not None) for s in samples]
        images = [self._sample_image(s) for s in samples if s.image is not None]
        texts, n_new = self.generate(prompts, images, max(s.max_new_tokens for s in samples))
        return texts, prompts, n_new

    def encode(self, prompts: list[str], images: list):
        """Processor inputs on the model's device; images in the order of their placeholders in ``prompts``."""
        if images and self.images_per_prompt:  # e.g. Gemma 3's processor reads a flat list as one prompt's images
            images = _per_prompt(prompts, images, self.image_marker)
        padding = {} if self.decoding is None else {"pad_to_multiple_of": self.decoding.pad_to_multiple_of}
        inputs = self.processor(images=images or None, text=prompts, return_tensors="pt", padding=True, **padding)
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        if self.vision_tokens_per_image is None and images and self.image_token_id is not None:
            self.vision_tokens_per_image = int((inputs["input_ids"] == self.image_token_id).sum()) // len(images)
        return inputs

    @torch.no_grad()
    def generate(self, prompts: list[str], images: list, max_new_tokens: int) -> tuple[list[str], int]:
        inputs = self.encode(prompts, images)
        kwargs = dict(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if self.decoding is None:
            out = self.model.generate(**inputs, **kwargs)
        else:
            out = self.decoding.generate(inputs, kwargs)
        new = out[:, inputs["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [t.strip() for t in texts], int((new != self.tokenizer.pad_token_id).sum())


class CompiledDecoding:
    """Greedy ``generate`` with a compiled decode step over fixed shapes (``adsc eval --compile``).

    Prompts are left-padded to a multiple of ``pad_to_multiple_of`` tokens, so that batches fall
    into a few shapes; each shape (batch size, padded width, max new tokens) keeps one
    :class:`adsc.StageCache`, reset for every batch of that shape, whose fixed buffers are what the
    compiled step was compiled for: one graph per shape, not per batch. A cache is sized by the
    first batch of its shape, each layer's slots rounded up to ``slot_multiple``; a later batch
    whose compressed stages keep more tokens than that (more text beside its images) does not fit
    it (``StageCacheTooSmall``, raised in its prefill, before any token is decoded) and is rerun on
    a new, larger cache: one more prefill, at most one more graph. The ``max_caches`` most recent
    shapes keep theirs (each holds a batch's whole KV). ``compile`` is True (inductor; CUDA graphs on
    a GPU) or a transformers ``CompileConfig``.
    """

    def __init__(self, model, compile, pad_to_multiple_of: int = 64, slot_multiple: int = 16, max_caches: int = 4):
        from transformers import CompileConfig

        self.model, self.pad_to_multiple_of, self.max_caches = model, pad_to_multiple_of, max_caches
        self.slot_multiple = slot_multiple
        if compile is True:
            mode = "reduce-overhead" if model.device.type == "cuda" else "default"
            # static shapes: a size dynamo saw change would otherwise turn dynamic, slower kernels
            # (and CUDA graphs are recorded per shape anyway)
            compile = CompileConfig(fullgraph=True, dynamic=False, mode=mode)
        compile._compile_all_devices = True  # transformers compiles on GPUs only unless told
        self.compile_config = compile
        self.caches: dict[tuple, object] = {}

    def generate(self, inputs, kwargs: dict):
        from ..engine.cache import StageCache, StageCacheTooSmall  # lazy: subclasses transformers.Cache, imported on use

        shape = (*inputs["input_ids"].shape, kwargs["max_new_tokens"])
        cache = self.caches.pop(shape, None)
        # every shape's graph sits in the cache of one code object (the model's forward): room for them
        with torch._dynamo.config.patch(recompile_limit=max(torch._dynamo.config.recompile_limit, 64)):
            if cache is not None:
                cache.reset()
                try:
                    out = self._generate(inputs, kwargs, cache)
                except StageCacheTooSmall:  # raised in the prefill, before any token: rerun on a new cache
                    cache = None
            if cache is None:
                cache = StageCache(self.model.config, max_new_tokens=kwargs["max_new_tokens"],
                                   slot_multiple=self.slot_multiple)
                out = self._generate(inputs, kwargs, cache)
        self.caches[shape] = cache  # most recent last
        while len(self.caches) > self.max_caches:  # bound the memory: each holds a batch's whole KV
            del self.caches[next(iter(self.caches))]
        return out

    def _generate(self, inputs, kwargs: dict, cache):
        return self.model.generate(**inputs, **kwargs, cache=cache, compile_config=self.compile_config)


def _family_pads_to_square(model) -> bool:
    """The adapter's ``pad_to_square``; False for a model adsc has no adapter for (it is not compressed)."""
    return _family_fact(model, "pad_to_square")


def _family_fact(model, name: str) -> bool:
    """A boolean fact of the model's adapter; False for a model adsc has no adapter for."""
    try:
        return getattr(adapter_for(model), name)
    except UnsupportedModelError:
        return False


def _image_placeholder(model, processor) -> str:
    """The adapter's placeholder for one image; the processor's ``image_token`` for a model adsc has no
    adapter for (the base adapter's rule)."""
    try:
        return adapter_for(model).image_placeholder(processor)
    except UnsupportedModelError:
        return Adapter().image_placeholder(processor)


def _per_prompt(prompts: list[str], images: list, marker: str) -> list[list]:
    """The flat image list (in marker order) split into one list per prompt, by its count of ``marker``."""
    nested, used = [], 0
    for prompt in prompts:
        count = prompt.count(marker)
        nested.append(images[used : used + count])
        used += count
    return nested
