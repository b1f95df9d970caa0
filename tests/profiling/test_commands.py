"""The commands run (tiny settings); no timing is asserted anywhere."""

import json

import pytest
import torch

from adsc.cli import main


def test_profile_table_and_json(capsys):
    assert main(["profile", "--budget", "128", "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "| adsc |" in out and "per decoder layer" in out
    assert main(["profile", "--model", "qwen2-vl-7b", "--drop-ratio", "0.5", "--layers", "2", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schedule"]["keep_counts"] == [128, 64]
    assert data["adsc"]["flops"]["total"] < data["full"]["flops"]["total"]


def test_profile_rejects_unreachable_budget(capsys):
    assert main(["profile", "--layers", "16", "--budget", "64"]) == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_reproduce_table4_writes_results(tmp_path, capsys):
    assert main(["profile", "--reproduce-table4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "9.85" in out and "784.3" in out and "within the 3 % tolerance" in out
    rows = json.loads((tmp_path / "table4.json").read_text())["rows"]
    assert len(rows) == 4


def test_bench_runs_on_cpu(tmp_path, capsys):
    args = ["bench", "--size", "tiny", "--trials", "1", "--warmup", "0", "--new-tokens", "2", "--threads", "1",
            "--methods", "adsc", "no-such-method", "--budgets", "192", "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    rows = result["runs"][0]["rows"]
    assert [r["config"] for r in rows] == ["full", "noop", "adsc@192"]
    assert rows[2]["ratio"]["kv"] < 1 and rows[2]["kv_bytes"] == rows[2]["kv_bytes_analytical"]
    assert any(s["config"] == "no-such-method@192" for s in result["skipped"])
    assert (tmp_path / "results.md").exists() and (tmp_path / "results.png").exists()


def test_bench_measures_one_configuration_given_by_the_shared_flags(tmp_path):
    """--method / --layers / --budget / --drop-ratio are the flags every command takes: one
    configuration, measured beside full and noop (at its own pruning layers)."""
    args = ["bench", "--size", "tiny", "--trials", "1", "--warmup", "0", "--new-tokens", "2", "--no-plot",
            "--method", "adsc", "--layers", "2", "5", "--drop-ratio", "0.5", "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert [r["config"] for r in result["runs"][0]["rows"]] == ["full", "noop", "adsc@drop0.5"]
    assert result["environment"]["pruning_layers"] == [2, 5]


@pytest.mark.parametrize("argv, message", [
    (["--budget", "128", "--budgets", "192"], "give one of the two"),
    (["--method", "fastv", "--methods", "tome"], "give one of the two"),
    (["--method", "fastv"], "needs --budget or --drop-ratio"),
    (["--drop-ratio", "1.5"], "--drop-ratio must be"),
])
def test_bench_refuses_a_configuration_and_a_sweep_together(argv, message, capsys):
    assert main(["bench", "--size", "tiny", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_twin_model_shares_every_tensor_and_decodes_the_same():
    from adsc.profiling.bench_models import build_inputs, build_model, twin

    model = build_model("tiny")
    copy = twin(model)
    assert all(a is b for a, b in zip(model.parameters(), copy.parameters()))
    assert all(a is b for a, b in zip(model.buffers(), copy.buffers()))
    assert not any(t.is_meta for t in [*copy.parameters(), *copy.buffers()])
    assert copy.model.language_model.layers[0] is not model.model.language_model.layers[0]
    inputs = build_inputs(1)
    with torch.no_grad():
        kw = dict(max_new_tokens=3, do_sample=False)
        assert torch.equal(model.generate(**inputs, **kw), copy.generate(**inputs, **kw))


@pytest.mark.compile
def test_bench_compile_interleaves_and_reports_paired_ratios(tmp_path):
    args = ["bench", "--compile", "--size", "tiny", "--budgets", "192", "--trials", "2", "--warmup", "0",
            "--new-tokens", "3", "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    rows = result["runs"][0]["rows"]
    assert [r["config"] for r in rows] == ["full", "noop", "adsc@192"]
    for row in rows:
        assert row["compiled_tokens_equal_eager"] and row["recompilations_after_first"] == 0
        assert row["prefill_compilations"] >= 1 and "compiled_prefill" in row["ratio"]  # adsc.compile_prefill ran
        assert row["prefill_recompilations_after_first"] == 0  # --warmup 0 too: compiled for the reused cache
        lo, hi = row["ratio_quartiles"]["eager_host_step"]
        assert lo <= row["ratio"]["eager_host_step"] <= hi
        lo, hi = row["ratio_ci"]["eager_host_step"]
        assert lo <= row["ratio"]["eager_host_step"] <= hi
    assert "paired" in (tmp_path / "results.md").read_text()


@pytest.mark.compile
def test_bench_compile_stops_at_max_seconds_and_keeps_what_it_measured(tmp_path):
    """--max-seconds: the first batch still gets one round (not the three asked for), the next
    batch is listed as not measured, and the results on disk say the run is incomplete."""
    args = ["bench", "--compile", "--size", "tiny", "--budgets", "192", "--trials", "3", "--warmup", "0",
            "--new-tokens", "2", "--batch", "1", "2", "--max-seconds", "0.001", "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert [run["batch"] for run in result["runs"]] == [1] and result["complete"] is False
    assert all(row["pairs"]["eager_prefill"] == 1 for row in result["runs"][0]["rows"])
    assert result["skipped"] == [{"config": "batch 2", "reason": "--max-seconds 0.001 had passed"}]
    text = (tmp_path / "results.md").read_text()
    assert "batch 1 (1 round)" in text and "**Incomplete**" in text and "- batch 2: --max-seconds" in text


def test_the_median_interval_covers_the_true_median_and_narrows_with_pairs():
    """bench --compile's 95 % interval of a median ratio (order statistics): over 200 samples of
    noisy ratios around 1.02 it holds 1.02 about 95 % of the time, is far narrower than the
    quartiles at 512 pairs, and spans every pair when there are only a few."""
    import random

    from adsc.profiling.bench_compile import _median_interval, _spread

    rng = random.Random(0)
    held = 0
    for _ in range(200):
        ratios = [1.02 + rng.gauss(0, 0.08) for _ in range(256)]
        lo, hi = _median_interval(ratios)
        held += lo <= 1.02 <= hi
    assert 180 <= held <= 200, held
    ratios = [1.02 + rng.gauss(0, 0.08) for _ in range(512)]
    (lo, hi), (_, (q1, q3)) = _median_interval(ratios), _spread(ratios)
    assert q1 < lo < hi < q3 and (hi - lo) < (q3 - q1) / 4
    assert _median_interval([3.0, 1.0, 2.0]) == [1.0, 3.0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_bench_gpu_mode_refuses_without_cuda(capsys):
    assert main(["bench", "--device", "cuda"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--batch", "0"], "--batch must be >= 1"),
    (["--trials", "0"], "--trials must be >= 1"),
    (["--budgets", "-3"], "--budgets must be > 0"),
    (["--warmup", "-1"], "--warmup must be >= 0"),
    (["--max-seconds", "60"], "--max-seconds bounds a --compile run"),
    (["--compile", "--max-seconds", "0"], "--max-seconds must be > 0"),
])
def test_bench_refuses_bad_numbers_before_building_anything(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_refuses_an_output_path_under_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["bench", "--out", str(tmp_path / "f" / "out")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
