"""Generation runs on a tiny random LLaVA: end to end, resume after a kill, shards, refusal."""

import json
import os
import shutil

import pytest
from eval_fixtures import MME_SUBTASKS, OPTIONS

import adsc
from adsc.evaluation.benchmarks import DataError
from adsc.evaluation.predictions import PredictionWriter, read_predictions
from adsc.evaluation.run import evaluate, merge_and_score

ALL = ["gqa", "mme", "pope", "sqa", "textvqa", "vqav2"]
CONFIG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5, vision_tokens=36)


@pytest.fixture(scope="module")
def model_and_processor(tiny_model_dir):
    from adsc.evaluation.generation import load_model

    return load_model(tiny_model_dir, "float32", "cpu")


def _scores(results):
    return {k: v["scores"] for k, v in results["benchmarks"].items()}


def _texts(directory, name):
    return {k: r["text"] for k, r in read_predictions(os.path.join(directory, f"{name}.predictions.jsonl"))[1].items()}


@pytest.fixture(scope="module")
def clean_run(model_and_processor, data_root, tmp_path_factory):
    model, processor = model_and_processor
    out = str(tmp_path_factory.mktemp("clean"))
    results = evaluate(model, processor, ALL, data_root, out, compression=CONFIG, model_name="tiny", batch_size=3,
                       max_new_tokens=3, progress=False, benchmark_options=OPTIONS)
    return out, results


def test_cli_end_to_end_all_six(tiny_model_dir, data_root, tmp_path):
    from adsc.cli import main

    out = str(tmp_path / "run")
    rc = main(["eval", "--model", tiny_model_dir, "--data-root", data_root, "--output-dir", out, "--benchmarks", ",".join(ALL),
               "--layers", "2", "4", "--drop-ratio", "0.5", "--vision-tokens", "36", "--max-new-tokens", "3",
               "--batch-size", "4", "--device", "cpu", "--quiet", "--mme-subtasks", ",".join(MME_SUBTASKS)])
    assert rc == 0
    with open(os.path.join(out, "results.json")) as fh:
        results = json.load(fh)
    assert set(results["benchmarks"]) == set(ALL)
    assert results["compression"]["drop_ratio"] == 0.5 and results["tokens"] == pytest.approx(21.0)  # 36,36,18,18,9,9
    assert results["vision_tokens"] == 36 and results["measured_average"] == pytest.approx(21.0)
    for name, r in results["benchmarks"].items():
        assert isinstance(r["headline"], float), name
        assert results["timing"][name]["generated"] > 0
    assert len(_texts(out, "pope")) == 12
    header, records = read_predictions(os.path.join(out, "sqa.predictions.jsonl"))
    assert header["fingerprint"]["compression"]["layers"] == [2, 4]
    assert records["5"]["prompt"].startswith("USER: Question 5?")  # text-only question: no <image>
    assert records["1"]["prompt"].startswith("USER: <image>\nContext: Look at the picture.")


def test_resume_after_kill_gives_identical_scores(clean_run, model_and_processor, data_root, tmp_path):
    clean_dir, clean = clean_run
    model, processor = model_and_processor
    killed = str(tmp_path / "killed")
    shutil.copytree(clean_dir, killed)
    os.remove(os.path.join(killed, "results.json"))
    # a kill mid-write: two complete answers, then half a line, in POPE; MME never started
    path = os.path.join(killed, "pope.predictions.jsonl")
    lines = open(path).read().splitlines(keepends=True)
    with open(path, "w") as fh:
        fh.writelines(lines[:3])
        fh.write(lines[3][: len(lines[3]) // 2])
    os.remove(os.path.join(killed, "mme.predictions.jsonl"))
    resumed = evaluate(model, processor, ALL, data_root, killed, compression=CONFIG, model_name="tiny", batch_size=3,
                       max_new_tokens=3, progress=False, benchmark_options=OPTIONS)
    assert resumed["timing"]["pope"] == pytest.approx({**resumed["timing"]["pope"], "generated": 10, "resumed": 2})
    assert resumed["timing"]["gqa"]["generated"] == 0 and resumed["timing"]["mme"]["generated"] == 10
    assert _scores(resumed) == _scores(clean)
    assert _texts(killed, "pope") == _texts(clean_dir, "pope")
    assert all(json.loads(line) for line in open(path))  # no half line left behind


def test_resume_refuses_another_config(clean_run, model_and_processor, data_root, tmp_path):
    clean_dir, _ = clean_run
    model, processor = model_and_processor
    other = str(tmp_path / "other")
    shutil.copytree(clean_dir, other)
    with pytest.raises(DataError, match="different compression"):
        evaluate(model, processor, ["gqa"], data_root, other, compression=CONFIG.replace(drop_ratio=0.25),
                 model_name="tiny", max_new_tokens=3, progress=False, benchmark_options=OPTIONS)
    from adsc.tiny import tiny_llava

    retrained = tiny_llava(layers=6, image_size=48, patch=8, seed=4).eval()  # other weights, same architecture
    with pytest.raises(DataError, match="different model"):
        evaluate(retrained, processor, ["gqa"], data_root, other, compression=CONFIG, model_name="tiny",
                 max_new_tokens=3, progress=False, benchmark_options=OPTIONS)
    assert adsc.get_handle(model) is None  # the compression was removed on the error path


def test_shards_merge_to_the_clean_scores(clean_run, model_and_processor, data_root, tmp_path):
    clean_dir, clean = clean_run
    model, processor = model_and_processor
    out = str(tmp_path / "sharded")
    for i in range(2):
        assert evaluate(model, processor, ALL, data_root, out, compression=CONFIG, model_name="tiny", batch_size=3,
                        max_new_tokens=3, shard=(i, 2), progress=False, benchmark_options=OPTIONS) is None
    assert os.path.exists(os.path.join(out, "pope.predictions.shard1of2.jsonl"))
    merged = merge_and_score(out, ALL, data_root, 2, benchmark_options=OPTIONS)
    assert _scores(merged) == _scores(clean)
    assert merged["tokens"] == clean["tokens"] and merged["model"] == "tiny"
    assert list(_texts(out, "pope")) == list(_texts(clean_dir, "pope"))  # merged in question order


def test_merge_needs_every_shard(data_root, tmp_path):
    with pytest.raises(DataError, match="shard 0/2"):
        merge_and_score(str(tmp_path), ["gqa"], data_root, 2)


def test_prediction_writer_cuts_half_lines(tmp_path):
    path = str(tmp_path / "p.jsonl")
    w = PredictionWriter(path, {"model": "m"})
    w.append([{"id": "1", "text": "a", "prompt": "p"}])
    with open(path, "a") as fh:
        fh.write('{"id": "2", "te')  # killed mid-write
    w2 = PredictionWriter(path, {"model": "m"})
    assert list(w2.done) == ["1"]
    w2.append([{"id": "2", "text": "b", "prompt": "p"}])
    assert list(read_predictions(path)[1]) == ["1", "2"]
    # a header cut in half is rewritten
    with open(path, "w") as fh:
        fh.write('{"header": {"form')
    assert PredictionWriter(path, {"model": "m"}).done == {}
    assert read_predictions(path)[0]["fingerprint"] == {"model": "m"}
    with open(path, "a") as fh:
        fh.write("not json\n" + json.dumps({"id": "3", "text": "c"}) + "\n")
    with pytest.raises(DataError, match="line 2 is corrupt"):
        read_predictions(path)


def test_limit_scores_a_prefix(model_and_processor, data_root, tmp_path):
    model, processor = model_and_processor
    res = evaluate(model, processor, ["pope"], data_root, str(tmp_path), model_name="tiny", max_new_tokens=2,
                   limit=5, progress=False)
    assert res["method"] == "full" and res["tokens"] == 36 and res["limit"] == 5
    assert res["benchmarks"]["pope"]["scores"]["adversarial"]["n"] == 4
    assert res["benchmarks"]["pope"]["scores"]["popular"]["n"] == 1


def test_compiled_decoding_writes_the_eager_predictions_with_one_graph_per_batch_shape(clean_run, model_and_processor,
                                                                                      data_root, tmp_path, monkeypatch):
    """`adsc eval --compile`: every benchmark's answers equal the eager run's (graphs captured and
    run as traced: the decode step is the engine's, fixed shapes through adsc.StageCache, prompts
    padded to a multiple of 64); one decode graph per batch shape, each StageCache reused (reset)
    for every batch of its shape; the fingerprint says compiled, so eager predictions never mix in."""
    import torch
    from transformers import CompileConfig

    graphs = []

    def capture(graph, example_inputs):
        graphs.append(graph)
        return graph.forward

    from adsc.engine.cache import StageCache

    made, init = [], StageCache.__init__
    monkeypatch.setattr(StageCache, "__init__", lambda self, *a, **k: (made.append(1), init(self, *a, **k))[1])
    model, processor = model_and_processor
    out = str(tmp_path / "compiled")
    torch._dynamo.reset()
    results = evaluate(model, processor, ALL, data_root, out, compression=CONFIG, model_name="tiny", batch_size=3,
                       max_new_tokens=3, progress=False, benchmark_options=OPTIONS,
                       compile=CompileConfig(backend=capture, mode="default", fullgraph=True))
    torch._dynamo.reset()
    for name in ALL:
        assert _texts(out, name) == _texts(clean_run[0], name), name
    assert _scores(results) == _scores(clean_run[1])
    header, _ = read_predictions(os.path.join(out, "pope.predictions.jsonl"))
    assert header["fingerprint"]["prompt"]["compiled_decode"] == {"pad_to_multiple_of": 64}
    # at most one graph per cache (a batch shape, or a cache that grew; dynamo may make a size dynamic)
    assert 1 <= len(graphs) <= len(made) < 12
    with pytest.raises(DataError, match="different"):  # an eager rerun into the compiled run's folder
        evaluate(model, processor, ["pope"], data_root, out, compression=CONFIG, model_name="tiny", batch_size=3,
                 max_new_tokens=3, progress=False, benchmark_options=OPTIONS)


@pytest.mark.compile
def test_compiled_decoding_with_inductor_writes_the_eager_predictions(clean_run, model_and_processor, data_root, tmp_path):
    """The same through the real compiler (`adsc eval --compile` on the CPU: inductor), on POPE."""
    import torch

    model, processor = model_and_processor
    out = str(tmp_path / "inductor")
    torch._dynamo.reset()
    try:
        evaluate(model, processor, ["pope"], data_root, out, compression=CONFIG, model_name="tiny", batch_size=3,
                 max_new_tokens=3, progress=False, benchmark_options=OPTIONS, compile=True)
    finally:
        torch._dynamo.reset()
    assert _texts(out, "pope") == _texts(clean_run[0], "pope")


def test_cli_compile_flag_reaches_the_run(tiny_model_dir, data_root, tmp_path, monkeypatch):
    from adsc.cli import main
    from adsc.evaluation import cli

    seen = {}
    monkeypatch.setattr(cli, "evaluate", lambda *a, **k: seen.update(k))  # returns None: like a finished shard
    rc = main(["eval", "--model", tiny_model_dir, "--data-root", data_root, "--output-dir", str(tmp_path / "run"),
               "--benchmarks", "pope", "--device", "cpu", "--quiet", "--compile", "--shard", "0/1"])
    assert rc == 0 and seen["compile"] is True


def test_compiled_decoding_of_the_full_model_writes_its_eager_predictions(model_and_processor, data_root, tmp_path):
    """No compression: the StageCache holds every layer at the prompt's length, the same answers."""
    import torch
    from transformers import CompileConfig

    model, processor = model_and_processor
    runs = {}
    for mode, compile in (("eager", False), ("compiled", CompileConfig(backend=lambda g, _: g.forward, mode="default",
                                                                         fullgraph=True))):
        torch._dynamo.reset()
        evaluate(model, processor, ["pope"], data_root, str(tmp_path / mode), model_name="tiny", batch_size=3,
                 max_new_tokens=3, progress=False, benchmark_options=OPTIONS, compile=compile)
        runs[mode] = _texts(str(tmp_path / mode), "pope")
    torch._dynamo.reset()
    assert runs["compiled"] == runs["eager"]
