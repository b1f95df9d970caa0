"""The lmms-eval adapter, against a stand-in of lmms-eval's model API (lmms-eval is optional)."""

import sys
import types
from dataclasses import dataclass

import pytest
from PIL import Image

import adsc
from adsc.evaluation import lmms_eval_adapter as adapter


@pytest.fixture
def fake_lmms_eval(monkeypatch):
    """lmms_eval.api.model.lmms and lmms_eval.api.registry.register_model, as in lmms-eval 0.7."""
    pkg, api, model, registry = (types.ModuleType(n) for n in ("lmms_eval", "lmms_eval.api", "lmms_eval.api.model",
                                                                 "lmms_eval.api.registry"))

    class lmms:  # noqa: N801 - lmms-eval's name
        def __init__(self):
            self._rank, self._world_size = 0, 1

    registered = {}

    def register_model(*names):
        def decorate(cls):
            registered.update({n: cls for n in names})
            return cls
        return decorate

    model.lmms, registry.register_model, registry.MODEL_REGISTRY = lmms, register_model, registered
    pkg.api, api.model, api.registry = api, model, registry
    for mod in (pkg, api, model, registry):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(adapter, "_CLASS", None)
    return registered


@dataclass
class Instance:  # the fields the adapter reads: args = (context, gen_kwargs, doc_to_visual, doc_id, task, split)
    args: tuple


def test_import_needs_no_lmms_eval(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmms_eval", None)  # as if not installed
    monkeypatch.setattr(adapter, "_CLASS", None)
    with pytest.raises(ImportError, match="lmms-eval is not installed"):
        adapter.adapter_class()


def test_generate_until_and_loglikelihood(fake_lmms_eval, tiny_model_dir):
    from adsc.evaluation.generation import load_model

    model, processor = load_model(tiny_model_dir, "float32", "cpu")
    lm = adapter.build(model=model, processor=processor, batch_size=2,
                       compression={"layers": [2, 4], "drop_ratio": 0.5, "vision_tokens": 36})
    assert adsc.get_handle(model) is lm.handle
    docs = [{"image": Image.new("RGB", (30, 20), (200, 10, 10)), "q": "what color is it?"} for _ in range(3)]
    lm.task_dict = {"toy": {"test": docs}}

    def to_visual(doc):
        return [doc["image"]]

    reqs = [Instance((d["q"], {"max_new_tokens": 3, "until": ["\n\n"]}, to_visual, i, "toy", "test")) for i, d in enumerate(docs)]
    reqs.append(Instance(("what?", {"max_new_tokens": 2}, to_visual, 0, "toy", "test")))  # other settings: own batch
    out = lm.generate_until(reqs)
    assert len(out) == 4 and all(isinstance(t, str) for t in out)
    # the same question through the adapter and through the eval runner's generator agree
    direct, _ = lm.generator.generate([lm.generator.prompt("what color is it?", True)],
                                      [lm.generator.load_image_obj(docs[0]["image"])], 3)
    assert out[0] == direct[0]
    (logp, greedy), = lm.loglikelihood([Instance(("what color is it?", " red", to_visual, 0, "toy", "test"))])
    assert logp < 0 and isinstance(greedy, bool)
    assert adapter.register() is adapter.adapter_class() and fake_lmms_eval["adsc"] is adapter.adapter_class()
    lm.handle.remove()


def test_stop_strings():
    assert adapter._stop("yes\n\nmore", ["\n\n"]) == "yes"
    assert adapter._stop("yes", None) == "yes"


def test_real_lmms_eval_on_a_local_task(tiny_model_dir, tmp_path, monkeypatch):
    """Runs only where lmms-eval is importable (it is an optional extra)."""
    pytest.importorskip("lmms_eval.evaluator")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(adapter, "_CLASS", None)
    out = adapter.run_toy(tiny_model_dir, str(tmp_path), {"layers": [2, 4], "drop_ratio": 0.5, "vision_tokens": 36})
    assert "exact_match,none" in out["results"]["adsc_toy_yesno"]
