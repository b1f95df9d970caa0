"""A (compressed) model as an lmms-eval model, so lmms-eval's tasks can score it.

lmms-eval is an optional extra (``pip install "adsc[lmms-eval]"``, or ``make lmms-env`` on a
CPU-only machine); nothing here imports it until a model is built. Three ways in:

* lmms-eval's own CLI: adsc's ``lmms_eval.models`` entry point (pyproject.toml) makes
  ``--model adsc`` known to an lmms-eval that sees the installed adsc::

      python -m lmms_eval --model adsc --tasks pope \
          --model_args pretrained=llava-hf/llava-1.5-7b-hf,compression=adsc_config.json

* ``simple_evaluate(model="adsc", model_args="pretrained=...,compression=...")``, the same
  registration from Python (``register()`` adds it where the entry point is not installed,
  e.g. a source checkout on PYTHONPATH);
* an instance, for a model already in memory::

      lm = build(model=model, processor=processor, compression=config, batch_size=8)
      simple_evaluate(model=lm, tasks=["pope"])

``compile=true`` in the model_args decodes as ``adsc eval --compile`` does (docs/evaluation.md).

Prompts and decoding are ``adsc eval``'s own (:class:`~adsc.evaluation.generation.Generator`):
lmms-eval supplies the question text (its ``doc_to_text``) and the images, the generator wraps
them in the same chat template and decodes greedily. What differs is the task side, lmms-eval's
prompts and scoring rules (docs/evaluation.md, "lmms-eval"): its numbers are not
interchangeable with ``adsc eval``'s.
"""

from __future__ import annotations

import json

import torch
from tqdm.auto import tqdm

from .. import CompressionConfig, compress
from .generation import Generator, load_model

NAME = "adsc"
CLASS_NAME = "ADSCLmms"
_CLASS = None


def _require():
    try:
        from lmms_eval.api.model import lmms
    except ImportError as err:
        raise ImportError('lmms-eval is not installed: pip install "adsc[lmms-eval]" (on a CPU-only machine: make lmms-env, '
                          "see docs/evaluation.md)") from err
    return lmms


def adapter_class():
    """The lmms subclass, created on first use so that importing this module needs no lmms-eval."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _make_class(_require())
    return _CLASS


def __getattr__(name):
    # lmms-eval imports a registered model by its dotted class path: the class is made on that access.
    if name == CLASS_NAME:
        return adapter_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(pretrained=None, model=None, processor=None, compression=None, **kwargs):
    """An adapter instance from a hub id / path, or from an already loaded model + processor."""
    return adapter_class()(pretrained=pretrained, model=model, processor=processor, compression=compression, **kwargs)


def manifest(name: str = NAME):
    """lmms-eval's model manifest for ``name`` (the payload of the ``lmms_eval.models`` entry point)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=name, simple_class_path=f"{__name__}.{CLASS_NAME}")


def register(name: str = NAME):
    """Make ``name`` a model lmms-eval's ``simple_evaluate``/CLI can build; returns the class.

    lmms-eval >= 0.6 resolves names through ``lmms_eval.models.MODEL_REGISTRY_V2``; older ones
    through ``lmms_eval.api.registry.register_model``.
    """
    cls = adapter_class()
    try:
        from lmms_eval.models import MODEL_REGISTRY_V2
    except ImportError:
        from lmms_eval.api.registry import register_model

        return register_model(name)(cls)
    MODEL_REGISTRY_V2.register_manifest(manifest(name), overwrite=True)
    return cls


def compression_config(value):
    """``compression=`` as lmms-eval's model_args give it: a CompressionConfig JSON file, a folder
    holding adsc_config.json, inline JSON (``compression={"layers":[2,8,16,24],"budget":192}``),
    a dict, a config, or None / "" / "none" for the full model."""
    if value is None or isinstance(value, CompressionConfig):
        return value
    if isinstance(value, dict):
        return CompressionConfig.from_dict(value)
    text = str(value).strip()
    if text.lower() in ("", "none"):
        return None
    if text.startswith("{"):
        try:
            return CompressionConfig.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise ValueError(f"compression={text!r} is not valid JSON ({err}); quote model_args in the shell") from None
    return CompressionConfig.from_pretrained(text)


def flag(name: str, value) -> bool:
    """A boolean model_arg: lmms-eval passes ``compile=true`` through as it was typed (a string)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off", "none"):
        return False
    raise ValueError(f"{name}={value!r}: give true or false")


def _stop(text: str, until) -> str:
    for s in until or ():
        if s and s in text:
            text = text.split(s)[0]
    return text


def _make_class(lmms):
    class ADSCLmms(lmms):
        def __init__(self, pretrained=None, model=None, processor=None, compression=None, batch_size=1, device=None,
                     dtype="auto", attn=None, template="auto", max_new_tokens=128, compile=False, **_ignored):
            super().__init__()
            if model is None:
                if pretrained is None:
                    raise ValueError("give pretrained=<hub id or path> or model= and processor=")
                if device is None:
                    device = "cuda" if torch.cuda.is_available() else "cpu"
                model, processor = load_model(pretrained, dtype, device, attn)
            compression = compression_config(compression)
            self.handle = compress(model, compression) if compression is not None else None
            self.model, self.processor = model, processor
            self.generator = Generator(model, processor, template=template, compile=flag("compile", compile))
            if not str(batch_size).isdigit():  # lmms-eval's CLI also offers "auto"
                raise ValueError(f"the adsc model needs a number for batch_size, got {batch_size!r}")
            self.batch_size = int(batch_size)
            self.default_max_new_tokens = int(max_new_tokens)
            self.task_dict = getattr(self, "task_dict", {})  # lmms-eval's evaluator sets it

        # lmms-eval reads these for distributed bookkeeping; one process here.
        @property
        def rank(self):
            return 0

        @property
        def world_size(self):
            return 1

        def _visuals(self, doc_to_visual, doc_id, task, split) -> list:
            visuals = doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual else []
            return [v.convert("RGB") for v in (visuals or []) if v is not None]

        def _prompt(self, context: str, n_images: int) -> str:
            text = context.replace("<image>", "").strip()
            prompt = self.generator.prompt(text, n_images > 0)
            if n_images > 1:  # extra images go before the first one, one family placeholder each
                marker = self.generator.image_marker
                prompt = prompt.replace(marker, f"{marker}\n" * (n_images - 1) + marker, 1)
            return prompt

        def generate_until(self, requests) -> list[str]:
            results = [None] * len(requests)
            groups = {}
            for i, req in enumerate(requests):  # one batch holds one set of generation settings
                key = repr(sorted((k, repr(v)) for k, v in req.args[1].items()))
                groups.setdefault(key, []).append(i)
            bar = tqdm(total=len(requests), desc="adsc lmms-eval")
            for idx in groups.values():
                kwargs = dict(requests[idx[0]].args[1])
                until = kwargs.get("until")
                until = [until] if isinstance(until, str) else until
                max_new = int(kwargs.get("max_new_tokens", self.default_max_new_tokens))
                for b in range(0, len(idx), self.batch_size):
                    batch = idx[b:b + self.batch_size]
                    prompts, images = [], []
                    for i in batch:
                        context, _, doc_to_visual, doc_id, task, split = requests[i].args[:6]
                        visuals = self._visuals(doc_to_visual, doc_id, task, split)
                        prompts.append(self._prompt(context, len(visuals)))
                        images += [self.generator.load_image_obj(v) for v in visuals]
                    texts, _ = self.generator.generate(prompts, images, max_new)
                    for i, t in zip(batch, texts):
                        results[i] = _stop(t, until)
                    bar.update(len(batch))
            bar.close()
            return results

        @torch.no_grad()
        def loglikelihood(self, requests) -> list[tuple[float, bool]]:
            out = []
            for req in requests:
                context, continuation, doc_to_visual, doc_id, task, split = req.args[:6]
                visuals = self._visuals(doc_to_visual, doc_id, task, split)
                prompt = self._prompt(context, len(visuals))
                images = [self.generator.load_image_obj(v) for v in visuals]
                ctx = self.generator.encode([prompt], images)
                full = self.generator.encode([prompt + continuation], images)
                n_ctx = ctx["input_ids"].shape[1]
                logits = self.model(**full).logits[0, n_ctx - 1:-1].float()
                target = full["input_ids"][0, n_ctx:]
                logp = torch.log_softmax(logits, -1)
                out.append((float(logp.gather(-1, target[:, None]).sum()), bool((logits.argmax(-1) == target).all())))
            return out

        def generate_until_multi_round(self, requests):
            raise NotImplementedError("multi-round generation is not supported by the adsc adapter")

    return ADSCLmms
