"""A (compressed) model as an lmms-eval model, so lmms-eval's tasks can score it.

lmms-eval is an optional extra (``pip install "adsc[lmms-eval]"``); nothing here imports it
until a model is built. Two ways in::

    from adsc.evaluation.lmms_eval_adapter import build
    lm = build("llava-hf/llava-1.5-7b-hf", compression="adsc_config.json", batch_size=8)
    from lmms_eval.evaluator import simple_evaluate
    simple_evaluate(model=lm, tasks=["pope"], ...)

or ``register()`` once, then lmms-eval's own CLI/``simple_evaluate(model="adsc",
model_args="pretrained=...,compression=...")``.

lmms-eval scores differently from LLaVA's scripts in places (see EVAL_PROTOCOL / README):
its numbers are not interchangeable with ``adsc eval``'s.
"""

from __future__ import annotations

NAME = "adsc"
_CLASS = None


def _require():
    try:
        from lmms_eval.api.model import lmms
    except ImportError as err:
        raise ImportError('lmms-eval is not installed: pip install "adsc[lmms-eval]" (or pip install lmms-eval)') from err
    return lmms


def adapter_class():
    """The lmms subclass, created on first use so that importing this module needs no lmms-eval."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _make_class(_require())
    return _CLASS


def build(pretrained=None, model=None, processor=None, compression=None, **kwargs):
    """An adapter instance from a hub id / path, or from an already loaded model + processor."""
    return adapter_class()(pretrained=pretrained, model=model, processor=processor, compression=compression, **kwargs)


def register(name: str = NAME):
    """Register with lmms-eval's model registry (for ``--model adsc`` / model_args strings)."""
    from lmms_eval.api.registry import register_model

    return register_model(name)(adapter_class())


def _stop(text: str, until) -> str:
    for s in until or ():
        if s and s in text:
            text = text.split(s)[0]
    return text


def _make_class(lmms):
    import torch

    from .generation import Generator, load_model

    class ADSCLmms(lmms):
        def __init__(self, pretrained=None, model=None, processor=None, compression=None, batch_size=1, device=None,
                     dtype="auto", attn=None, template="auto", max_new_tokens=128, **_ignored):
            super().__init__()
            import adsc

            if model is None:
                if pretrained is None:
                    raise ValueError("give pretrained=<hub id or path> or model= and processor=")
                if device is None:
                    device = "cuda" if torch.cuda.is_available() else "cpu"
                model, processor = load_model(pretrained, dtype, device, attn)
            if isinstance(compression, str):
                compression = adsc.CompressionConfig.from_pretrained(compression)
            elif isinstance(compression, dict):
                compression = adsc.CompressionConfig.from_dict(compression)
            self.handle = adsc.compress(model, compression) if compression is not None else None
            self.model, self.processor = model, processor
            self.generator = Generator(model, processor, template=template)
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
            if n_images > 1:  # extra images go before the first one, one marker each
                prompt = prompt.replace("<image>", "<image>\n" * (n_images - 1) + "<image>", 1)
            return prompt

        def generate_until(self, requests) -> list[str]:
            from tqdm.auto import tqdm

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


# ------------------------------------------------------------------ offline demo
_TOY_YAML = """task: adsc_toy_yesno
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function adsc_toy_utils.doc_to_visual
doc_to_text: !function adsc_toy_utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 4
  until: ["\\n\\n"]
process_results: !function adsc_toy_utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""
_TOY_UTILS = '''from PIL import Image


def doc_to_visual(doc):
    return [Image.open(doc["image"]).convert("RGB")]


def doc_to_text(doc):
    return doc["question"] + "\\nAnswer the question using a single word or phrase."


def process_results(doc, results):
    return {"exact_match": float(results[0].strip().lower() == doc["answer"])}
'''


def write_toy_task(directory: str, n: int = 6) -> str:
    """A small local lmms-eval task (jsonl + images + YAML) that needs no network."""
    import json
    import os

    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    data = os.path.join(os.path.abspath(directory), "toy.jsonl")
    with open(data, "w") as fh:
        for i in range(n):
            red = i % 2 == 0
            image = os.path.join(os.path.abspath(directory), f"img{i}.png")
            Image.new("RGB", (40, 30), (220, 20, 20) if red else (20, 20, 220)).save(image)
            fh.write(json.dumps({"image": image, "question": "is the image red?", "answer": "yes" if red else "no"}) + "\n")
    with open(os.path.join(directory, "adsc_toy_yesno.yaml"), "w") as fh:
        fh.write(_TOY_YAML.format(data=data))
    with open(os.path.join(directory, "adsc_toy_utils.py"), "w") as fh:
        fh.write(_TOY_UTILS)
    return directory


def run_toy(model_path: str, directory: str, compression=None) -> dict:
    """Build the toy task, evaluate a (compressed) model on it with lmms-eval, return its results."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    write_toy_task(directory)
    lm = build(pretrained=model_path, compression=compression, batch_size=2, device="cpu", dtype="float32")
    return simple_evaluate(model=lm, tasks=["adsc_toy_yesno"], task_manager=TaskManager(include_path=directory))


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="lmms-eval on a small local task with a (compressed) model")
    parser.add_argument("--model", required=True)
    parser.add_argument("--task-dir", required=True)
    parser.add_argument("--compression", help="CompressionConfig JSON file")
    a = parser.parse_args()
    out = run_toy(a.model, a.task_dir, a.compression)
    print(json.dumps(out["results"], indent=2, default=str))
