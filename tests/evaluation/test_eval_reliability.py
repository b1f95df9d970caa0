"""Nothing lost, nothing mislabelled (issue 19): budgets against the model's own vision tokens,
limits, results.json merging, fingerprints by what the model is, one run per directory."""

import json
import os
import shutil
import threading

import pytest
import torch
from eval_fixtures import snapshot

import adsc
from adsc.cli import main
from adsc.evaluation.benchmarks import DataError, EvaluationInputError
from adsc.evaluation.files import OutputLock, write_json_atomic
from adsc.evaluation.run import evaluate

CONFIG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5, vision_tokens=36)


@pytest.fixture(scope="module")
def model_and_processor(tiny_model_dir):
    from adsc.evaluation.generation import load_model

    return load_model(tiny_model_dir, "float32", "cpu")


def _eval(args, capsys=None):
    rc = main(["eval", "--device", "cpu", "--quiet", "--max-new-tokens", "2", *args])
    return rc, (capsys.readouterr().err if capsys else "")


def _results(out):
    with open(os.path.join(out, "results.json")) as fh:
        return json.load(fh)


# ------------------------------------------------------------------ item 1: the model's vision tokens
def test_budget_is_solved_against_the_models_vision_tokens(tiny_model_dir, data_root, tmp_path, capsys):
    """The tiny LLaVA has (48/8)^2 = 36 tokens per image; 576 used to be assumed."""
    out = str(tmp_path / "b24")
    rc, err = _eval(["--model", tiny_model_dir, "--data-root", data_root, "--output-dir", out, "--benchmarks", "pope",
                     "--limit", "3", "--layers", "2", "4", "--budget", "24"], capsys)
    assert rc == 0, err
    res = _results(out)
    assert res["compression"]["vision_tokens"] == 36 and res["vision_tokens"] == 36
    assert res["tokens"] == 24 and abs(res["measured_average"] - 24) <= 1.0  # label and measurement agree
    assert main(["report", out, "--baseline", out]) == 0
    assert "| 24 |" in capsys.readouterr().out  # `adsc report` puts the run at its real budget
    rc, err = _eval(["--model", tiny_model_dir, "--data-root", data_root, "--output-dir", str(tmp_path / "b40"),
                     "--benchmarks", "pope", "--layers", "2", "4", "--budget", "40"], capsys)
    assert rc == 2 and "--budget 40 exceeds this model's 36 vision tokens per image" in err
    assert not os.path.exists(tmp_path / "b40")


def test_python_api_refuses_a_config_for_another_token_count(model_and_processor, data_root, tmp_path):
    model, processor = model_and_processor
    with pytest.raises(DataError, match="vision_tokens=576, but this model gives 36 .* set vision_tokens=36"):
        evaluate(model, processor, ["pope"], data_root, str(tmp_path / "o"),
                 compression=adsc.CompressionConfig(layers=(2, 4), budget=24), progress=False)
    assert not os.path.exists(tmp_path / "o")


# ------------------------------------------------------------------ item 2: limits
@pytest.mark.parametrize("limit", ["0", "-1"])
def test_limit_below_one_is_refused(tiny_model_dir, data_root, tmp_path, capsys, limit):
    rc, err = _eval(["--model", tiny_model_dir, "--data-root", data_root, "--output-dir", str(tmp_path / "o"),
                     "--benchmarks", "pope", "--limit", limit], capsys)
    assert rc == 2 and "--limit must be a whole number >= 1" in err
    assert not os.path.exists(tmp_path / "o")


def test_limit_below_one_is_refused_by_the_python_api(model_and_processor, data_root, tmp_path):
    model, processor = model_and_processor
    for limit in (0, -1):
        with pytest.raises(EvaluationInputError, match="--limit must be"):
            evaluate(model, processor, ["pope"], data_root, str(tmp_path), limit=limit, progress=False)


# ------------------------------------------------------------------ item 4: results.json, fingerprints
def test_rerunning_a_subset_keeps_the_other_benchmarks(model_and_processor, data_root, tmp_path):
    model, processor = model_and_processor
    out = str(tmp_path / "run")
    first = evaluate(model, processor, ["gqa", "pope"], data_root, out, compression=CONFIG, max_new_tokens=2,
                     progress=False)
    again = evaluate(model, processor, ["pope"], data_root, out, compression=CONFIG, max_new_tokens=2, progress=False)
    assert set(again["benchmarks"]) == {"gqa", "pope"}
    assert again["benchmarks"]["gqa"] == first["benchmarks"]["gqa"]
    assert again["timing"]["gqa"] == first["timing"]["gqa"] and again["timing"]["pope"]["generated"] == 0
    assert _results(out)["benchmarks"].keys() == {"gqa", "pope"}
    redone = evaluate(model, processor, ["pope"], data_root, out, compression=CONFIG, max_new_tokens=2, progress=False,
                      overwrite=True)  # starts pope again, keeps gqa
    assert redone["timing"]["pope"]["generated"] == 12 and redone["benchmarks"]["gqa"] == first["benchmarks"]["gqa"]
    assert again["fingerprint"]["numerics"]["dtype"] == "float32"


def test_a_bf16_rerun_into_an_fp32_directory_is_refused(model_and_processor, data_root, tmp_path):
    import copy

    model, processor = model_and_processor
    out = str(tmp_path / "run")
    evaluate(model, processor, ["gqa"], data_root, out, compression=CONFIG, max_new_tokens=2, progress=False)
    before = snapshot(out)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    for names in (["gqa"], ["pope"]):  # an existing benchmark's predictions, and a new benchmark's results entry
        with pytest.raises(DataError, match="different .*numerics"):
            evaluate(bf16, processor, names, data_root, out, compression=CONFIG, max_new_tokens=2, progress=False)
    assert snapshot(out) == before


def test_the_model_is_identified_by_what_it_is(tiny_model_dir, data_root, tmp_path, capsys, monkeypatch):
    from adsc.tiny import tiny_llava

    model_dir = str(tmp_path / "model")
    shutil.copytree(tiny_model_dir, model_dir)
    out = str(tmp_path / "run")
    args = ["--data-root", data_root, "--output-dir", out, "--benchmarks", "pope", "--limit", "2"]
    assert _eval(["--model", model_dir, *args], capsys)[0] == 0
    monkeypatch.chdir(tmp_path)  # the same model through a relative path: resumed, nothing generated
    rc, err = _eval(["--model", "model", *args], capsys)
    assert rc == 0, err
    assert _results(out)["timing"]["pope"]["generated"] == 0
    tiny_llava(layers=6, image_size=48, patch=8, seed=11).save_pretrained(model_dir)  # new weights, same path
    before = snapshot(out)
    rc, err = _eval(["--model", model_dir, *args], capsys)
    assert rc == 2 and "different model" in err
    assert snapshot(out) == before


# ------------------------------------------------------------------ item 5: one run per directory
def test_a_second_process_on_the_output_dir_is_refused(model_and_processor, data_root, tmp_path):
    model, processor = model_and_processor
    out = str(tmp_path)
    with OutputLock(out):  # another adsc eval holds the directory
        with pytest.raises(EvaluationInputError, match=rf"in use by another adsc eval \(pid {os.getpid()}"):
            evaluate(model, processor, ["pope"], data_root, out, progress=False, limit=2)
    assert not os.path.exists(os.path.join(out, "pope.predictions.jsonl"))
    with OutputLock(out, (0, 2)):  # shards of one run hold their own locks and may run side by side
        assert evaluate(model, processor, ["pope"], data_root, out, progress=False, limit=2, max_new_tokens=2,
                        shard=(1, 2)) is None


def test_the_lock_is_taken_across_processes(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from adsc.evaluation.files import OutputLock\n"
                               f"with OutputLock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(EvaluationInputError, match=f"pid {holder.pid}"):
            with OutputLock(str(tmp_path)):
                pass
    finally:
        holder.kill()
        holder.wait()
    with OutputLock(str(tmp_path)):  # a killed holder leaves no stale lock
        pass


def test_temp_files_have_unique_names(tmp_path):
    path = str(tmp_path / "results.json")
    errors = []

    def write(i):
        try:
            for j in range(30):
                write_json_atomic(path, {"writer": i, "n": j})
        except Exception as err:  # a fixed temp name: one writer's replace takes the other's file
            errors.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and os.listdir(tmp_path) == ["results.json"]


# ------------------------------------------------------------------ item 8: safetensors only
def test_pickle_only_models_are_refused(tiny_model_dir, tmp_path, data_root, capsys):
    from adsc.evaluation.generation import load_model

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, pickled)
    for f in os.listdir(pickled):
        if f.endswith(".safetensors"):
            os.remove(pickled / f)
    torch.save({"w": torch.zeros(1)}, pickled / "pytorch_model.bin")
    with pytest.raises(EvaluationInputError, match=r"pickle weights only \(pytorch_model.bin\).*save_pretrained"):
        load_model(str(pickled), "float32", "cpu")
    rc, err = _eval(["--model", str(pickled), "--data-root", data_root, "--output-dir", str(tmp_path / "o"),
                     "--benchmarks", "pope"], capsys)
    assert rc == 2 and "safetensors only" in err and not os.path.exists(tmp_path / "o")


# ------------------------------------------------------------------ item 9: CLI arguments
@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be a whole number >= 1"),
    (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "GPU"),
    (["--device", "toaster"], "--device 'toaster' is not a device name"),
    (["--benchmarks", "pope,mmbench"], "unknown benchmark 'mmbench'"),
    (["--shard", "3/2"], "--shard 3/2: need 0 <= i < n"),
    (["--compression", "NOFILE"], "--compression: no file NOFILE"),
])
def test_bad_arguments_are_named_errors(tiny_model_dir, data_root, tmp_path, capsys, extra, message):
    rc, err = _eval(["--model", tiny_model_dir, "--data-root", data_root, "--output-dir", str(tmp_path / "o"),
                     "--benchmarks", "pope", *extra], capsys)
    assert rc == 2 and message in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "o")


def test_dtype_choices_and_unwritable_output_dir(tiny_model_dir, data_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse: usage + "invalid choice", status 2
        _eval(["--model", tiny_model_dir, "--data-root", data_root, "--output-dir", str(tmp_path), "--dtype", "fp8"])
    assert exit_.value.code == 2 and "invalid choice: 'fp8'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, err = _eval(["--model", tiny_model_dir, "--data-root", data_root, "--output-dir", str(blocker / "run"),
                     "--benchmarks", "pope"], capsys)
    assert rc == 2 and "is not writable" in err


def test_a_read_only_output_dir_is_named(tmp_path, monkeypatch):
    import tempfile as tf

    from adsc.evaluation.checks import check_output_dir

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tf, "TemporaryFile", refuse)  # tests run as root, where chmod does not bite
    with pytest.raises(EvaluationInputError, match="is not writable \\(Permission denied\\)"):
        check_output_dir(str(tmp_path))
