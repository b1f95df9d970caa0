"""The lmms-eval adapter, against a stand-in of lmms-eval's model API (lmms-eval is optional)."""

import importlib
import sys
import types
from dataclasses import dataclass

import pytest
import torch
from PIL import Image

import adsc
from adsc.evaluation import lmms_eval_adapter as adapter


@pytest.fixture
def fake_lmms_eval(monkeypatch):
    """lmms_eval.api.model.lmms and lmms 0.7's model registry (lmms_eval.models.MODEL_REGISTRY_V2)."""
    names = ("lmms_eval", "lmms_eval.api", "lmms_eval.api.model", "lmms_eval.models", "lmms_eval.models.registry_v2")
    pkg, api, model, models, registry_v2 = (types.ModuleType(n) for n in names)

    class lmms:  # noqa: N801 - lmms-eval's name
        def __init__(self):
            self._rank, self._world_size = 0, 1

    @dataclass(frozen=True)
    class ModelManifest:
        model_id: str
        simple_class_path: str | None = None

    class Registry:  # resolves a name to a class path and imports it, as ModelRegistryV2 does
        def __init__(self):
            self.manifests = {}

        def register_manifest(self, manifest, overwrite=False):
            self.manifests[manifest.model_id] = manifest

        def get_model_class(self, name):
            module, cls = self.manifests[name].simple_class_path.rsplit(".", 1)
            return getattr(importlib.import_module(module), cls)

    model.lmms, registry_v2.ModelManifest, models.MODEL_REGISTRY_V2 = lmms, ModelManifest, Registry()
    pkg.api, api.model, pkg.models, models.registry_v2 = api, model, models, registry_v2
    for mod in (pkg, api, model, models, registry_v2):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(adapter, "_CLASS", None)
    return models.MODEL_REGISTRY_V2


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
    lm.handle.remove()


def test_registered_by_class_path(fake_lmms_eval):
    """The entry point's manifest names a dotted path; importing it makes the class (no lmms-eval at import)."""
    manifest = adapter.manifest()
    assert manifest.model_id == "adsc" and manifest.simple_class_path == "adsc.evaluation.lmms_eval_adapter.ADSCLmms"
    assert adapter.register() is adapter.adapter_class()
    assert fake_lmms_eval.get_model_class("adsc") is adapter.adapter_class() is adapter.ADSCLmms
    with pytest.raises(AttributeError):
        adapter.NoSuchThing  # noqa: B018


def test_stop_strings():
    assert adapter._stop("yes\n\nmore", ["\n\n"]) == "yes"
    assert adapter._stop("yes", None) == "yes"


def test_compression_from_model_args(tmp_path):
    """What `--model_args ...,compression=VALUE` may say: a file, a folder, inline JSON, none."""
    config = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5, vision_tokens=36)
    path = config.save_pretrained(str(tmp_path))
    assert adapter.compression_config(path) == config == adapter.compression_config(str(tmp_path))
    assert adapter.compression_config('{"layers": [2, 4], "drop_ratio": 0.5, "vision_tokens": 36}') == config
    assert adapter.compression_config(config.to_dict()) == config
    assert all(adapter.compression_config(v) is None for v in (None, "", "none", "None"))
    with pytest.raises(ValueError, match="not valid JSON"):
        adapter.compression_config('{"layers": [2')


def test_batch_size_must_be_a_number(fake_lmms_eval, tiny_model_dir):
    from adsc.evaluation.generation import load_model

    model, processor = load_model(tiny_model_dir, "float32", "cpu")
    with pytest.raises(ValueError, match="needs a number for batch_size"):
        adapter.build(model=model, processor=processor, batch_size="auto")


def test_compile_model_arg_decodes_compiled_with_the_same_answers(fake_lmms_eval, tiny_model_dir):
    """`--model_args ...,compile=true`: the generator decodes through the compiled fixed-shape path
    (its fingerprint says so) and answers as the eager adapter does; a bad value is refused."""
    from adsc.evaluation.generation import load_model

    model, processor = load_model(tiny_model_dir, "float32", "cpu")
    assert adapter.flag("compile", "True") and not adapter.flag("compile", "false") and adapter.flag("compile", True)
    with pytest.raises(ValueError, match="give true or false"):
        adapter.flag("compile", "maybe")
    image = Image.new("RGB", (30, 20), (200, 10, 10))
    answers = {}
    for value in ("false", "true"):
        lm = adapter.build(model=model, processor=processor, batch_size=2, compile=value,
                           compression={"layers": [2, 4], "drop_ratio": 0.5, "vision_tokens": 36})
        assert ("compiled_decode" in lm.generator.describe()) == (value == "true")
        if value == "true":  # capture the graphs and run them as traced (seconds; inductor: tests/evaluation/test_eval_run.py)
            from transformers import CompileConfig

            config = CompileConfig(backend=lambda graph, _: graph.forward, mode="default", fullgraph=True)
            config._compile_all_devices = True
            lm.generator.decoding.compile_config = config
        torch._dynamo.reset()
        answers[value], _ = lm.generator.generate([lm.generator.prompt("what color is it?", True)] * 2,
                                                  [lm.generator.load_image_obj(image)] * 2, 3)
        lm.handle.remove()
    torch._dynamo.reset()
    assert answers["true"] == answers["false"]
