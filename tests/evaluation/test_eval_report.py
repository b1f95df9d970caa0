"""`adsc report`: Table I layout, Avg. rel. %, drop, and the Figure 2 PNG."""

import json

import pytest
from PIL import Image

from adsc.cli import main
from adsc.evaluation.report import load_run, paper_table, relative

HEADLINE_KEYS = {"gqa": "accuracy", "mme": "perception", "pope": "f1_mean", "sqa": "img_accuracy",
                 "textvqa": "accuracy", "vqav2": "accuracy"}


def _write(tmp_path, name, label, tokens, scores, compressed=True):
    run = {"model": "m", "label": label, "method": label.lower(), "tokens": tokens,
           "compression": {"method": label.lower(), "budget": tokens} if compressed else None,
           "benchmarks": {b: {"headline": v, "metric": HEADLINE_KEYS[b], "scores": {}} for b, v in scores.items()}}
    d = tmp_path / name
    d.mkdir()
    (d / "results.json").write_text(json.dumps(run))
    return str(d)


def test_table_and_plot(tmp_path, capsys):
    full = _write(tmp_path, "full", "full", 576, {"gqa": 60.0, "mme": 1800.0, "pope": 80.0}, compressed=False)
    a192 = _write(tmp_path, "a192", "ADSC", 192, {"gqa": 57.0, "mme": 1710.0, "pope": 80.0})
    a64 = _write(tmp_path, "a64", "ADSC", 64, {"gqa": 48.0, "mme": 1440.0, "pope": 60.0})
    f192 = _write(tmp_path, "f192", "FastV", 192, {"gqa": 30.0, "mme": 900.0})  # POPE not run
    md, png = str(tmp_path / "t.md"), str(tmp_path / "fig.png")
    assert main(["report", a64, f192, full, a192, "--markdown", md, "--plot", png]) == 0
    lines = open(md).read().splitlines()
    assert lines[0] == "| method | tok | GQA | MME | POPE | Avg. rel. % | drop |"
    assert lines[2] == "| full | 576 | 60.0 | 1800 | 80.0 | 100.0 | 0.0 |"
    # (57/60 + 1710/1800 + 80/80) / 3 = (0.95 + 0.95 + 1) / 3
    assert lines[3] == "| ADSC | 192 | 57.0 | 1710 | 80.0 | 96.7 | 3.3 |"
    assert lines[4] == "| FastV | 192 | 30.0 | 900 | – | 50.0 | 50.0 |"  # mean over the benchmarks it has
    assert lines[5] == "| ADSC | 64 | 48.0 | 1440 | 60.0 | 78.3 | 21.7 |"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 600
    assert "| ADSC | 192" in capsys.readouterr().out


def test_baseline_must_be_unambiguous(tmp_path):
    a = _write(tmp_path, "a", "ADSC", 192, {"gqa": 50.0})
    with pytest.raises(ValueError, match="--baseline"):
        from types import SimpleNamespace

        from adsc.evaluation.report import run

        run(SimpleNamespace(results=[a], baseline=None, markdown=None, plot=None, paper=False))
    full = _write(tmp_path, "full", "full", 576, {"gqa": 60.0}, compressed=False)
    assert main(["report", a, "--baseline", full]) == 0  # the baseline joins the table


def test_relative_and_paper_table():
    assert relative({"gqa": 30.0, "pope": 90.0}, {"gqa": 60.0, "pope": 90.0, "mme": 1.0}) == pytest.approx(75.0)
    rows = paper_table().splitlines()
    assert rows[2].startswith("| full | 576 | 61.9 | 1864 |") and rows[2].endswith("| 100.0 | 0.0 |")
    assert "| ADSC | 192 | 61.0 | 1801 | 85.0 | 69.5 | 56.2 | 77.1 | 98.1 |" in rows[6]


def test_a_broken_results_file_is_named(tmp_path):
    (tmp_path / "results.json").write_text('{"benchmarks": ')
    with pytest.raises(ValueError, match="results.json is not valid JSON"):
        load_run(str(tmp_path))
    (tmp_path / "results.json").write_text("[1]")
    with pytest.raises(ValueError, match="not an `adsc eval` results file"):
        load_run(str(tmp_path))
