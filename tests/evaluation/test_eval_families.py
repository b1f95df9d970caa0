"""Evaluation on every family the engine supports beyond LLaVA-1.5: the real loading path, the
family's own processor outputs (image_sizes, image_grid_thw) through compressed generation."""

import json
import os

import pytest
from eval_fixtures import OPTIONS
from PIL import Image
from tests.families_io import FAMILIES, params, save_family

import adsc
from adsc.evaluation.generation import Generator, load_model
from adsc.evaluation.model_facts import reference_vision_tokens
from adsc.evaluation.run import evaluate
from adsc.tiny import tiny_chat_template

CONFIG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


@pytest.fixture(scope="module", params=params())
def saved(request, tmp_path_factory):
    return save_family(request.param, str(tmp_path_factory.mktemp(request.param)), seed=3)


def test_compressed_evaluation_runs_on_the_familys_own_inputs(saved, data_root, tmp_path):
    model, processor = load_model(saved, "float32", "cpu")
    out = str(tmp_path / "run")
    count, exact = reference_vision_tokens(model.config)  # a fixed grid (Gemma 3) is the reference, as adsc eval sets it
    config = CONFIG.replace(vision_tokens=count) if exact else CONFIG
    results = evaluate(model, processor, ["pope", "sqa"], data_root, out, compression=config, model_name="tiny",
                       batch_size=3, max_new_tokens=2, progress=False, benchmark_options=OPTIONS)
    assert set(results["benchmarks"]) == {"pope", "sqa"}
    # every image is halved twice on its own grid: the measured average is well below the full count
    assert 0 < results["measured_average"] < results["vision_tokens"]
    with open(os.path.join(out, "results.json")) as fh:
        assert json.load(fh)["compression"]["layers"] == [2, 4]


@pytest.mark.parametrize("name", params())
def test_default_prompt_without_a_chat_template_is_the_familys_own(name):
    """Without a chat template the default LLaVA-style prompt carries the family's placeholder: its
    processor accepts it and expands it into as many image tokens as the hub-style chat template's
    prompt (tests.families_io's marker, or Gemma 3's own template) gives the same image."""
    build_model, build_processor, marker = FAMILIES[name]
    model, processor = build_model(layers=2), build_processor()
    if marker is not None:
        processor.chat_template = tiny_chat_template(marker)
    image = Image.new("RGB", (40, 56), (90, 140, 200))
    expected = image_tokens(Generator(model, processor), image)
    processor.chat_template = None
    generator = Generator(model, processor)
    assert "USER: " in generator.prompt("what is it?", True)  # the default template, not a chat template
    assert image_tokens(generator, image) == expected > 0


def image_tokens(generator, image) -> int:
    inputs = generator.encode([generator.prompt("what is it?", True)], [generator.load_image_obj(image)])
    return int((inputs["input_ids"] == generator.image_token_id).sum())


def test_compiled_decoding_gives_the_eager_answers_on_the_familys_own_inputs(saved, data_root, tmp_path):
    """`adsc eval --compile` on every family (graphs captured and run as traced): POPE's answers
    equal the eager run's, with at least one compiled decode graph."""
    import torch
    from transformers import CompileConfig

    graphs = []

    def capture(graph, example_inputs):
        graphs.append(graph)
        return graph.forward

    model, processor = load_model(saved, "float32", "cpu")
    count, exact = reference_vision_tokens(model.config)
    config = CONFIG.replace(vision_tokens=count) if exact else CONFIG
    texts = {}
    for mode, compile in (("eager", False), ("compiled", CompileConfig(backend=capture, mode="default", fullgraph=True))):
        torch._dynamo.reset()
        evaluate(model, processor, ["pope"], data_root, str(tmp_path / mode), compression=config, model_name="tiny",
                 batch_size=3, max_new_tokens=2, progress=False, benchmark_options=OPTIONS, compile=compile)
        with open(tmp_path / mode / "pope.predictions.jsonl") as fh:
            texts[mode] = [json.loads(line).get("text") for line in fh][1:]
    torch._dynamo.reset()
    assert texts["compiled"] == texts["eager"] and graphs
