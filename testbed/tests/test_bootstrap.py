"""Bootstrap intervals over questions (bootstrap.py) on the smoke experiment's own files: the
resampled headline is the evaluation's own score of the resampled questions, the identity draw
gives results.json back, and the report carries the intervals."""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest

from adsc.evaluation.benchmarks import ORDER, headline
from adsc.evaluation.predictions import read_predictions
from adsc_testbed.bootstrap import QuestionBootstrap, counts_of, headline_from, interval, units_of
from adsc_testbed.experiment import CHECKPOINT, PRESETS
from adsc_testbed.report import headlines, rel_base, write_report
from adsc_testbed.runs import Results


def _test_runs(out):
    """Every test-split run folder of the experiment, with its results.json."""
    return {f.name: json.loads((f / "results.json").read_text()) for f in sorted((out / "runs").iterdir())
            if (f / "results.json").exists() and not f.name.startswith("val-")}


def test_the_identity_draw_gives_every_headline_of_results_json(smoke_experiment):
    out, _ = smoke_experiment
    boot = QuestionBootstrap(out / "data", out / "runs")
    runs = _test_runs(out)
    assert len(runs) >= 6
    for label, result in runs.items():
        again = boot.identity(result)
        assert set(again) == set(ORDER)
        for bench, r in result["benchmarks"].items():
            # accuracies of 0/1 points, POPE's F1 and MME's score are the same float operations: equal;
            # TextVQA/VQAv2 points are fractions summed in another order (last bit)
            assert again[bench] == pytest.approx(r["headline"], rel=1e-12, abs=1e-12), (label, bench)
            if bench not in ("textvqa", "vqav2"):
                assert again[bench] == r["headline"], (label, bench)


def _resampled_copy(bench, units, weights):
    """The benchmark with each image's questions repeated as often as ``weights`` draws the image
    (copies get new ids, and new images for MME's acc+), scored by the evaluation itself."""
    twin = copy.copy(bench)
    twin.samples = []
    maps = {a: dict(getattr(bench, a)) for a in ("answers", "truth", "subtask", "labels", "split_of", "problems", "image_key")
            if isinstance(getattr(bench, a, None), dict)}
    balanced = set(getattr(bench, "balanced", ()))
    for s in bench.samples:
        for k in range(int(weights[units.of_sample[s.id]])):
            sid = f"{s.id}~{k}"
            twin.samples.append(replace(s, id=sid))
            for name, m in maps.items():  # a repeated MME image is another image for acc+
                m[sid] = f"{m[s.id]}~{k}" if name == "image_key" else m[s.id]
            if s.id in balanced:
                balanced.add(sid)
    for name, m in maps.items():
        setattr(twin, name, m)
    twin.balanced = balanced
    return twin


def test_a_resampled_headline_is_the_evaluations_score_of_the_resampled_questions(smoke_experiment):
    """Not only the identity: on real draws (images repeated, some left out) the counts give what
    Benchmark.score gives on the questions repeated the same way -- POPE's F1 and MME's acc+ included."""
    out, _ = smoke_experiment
    boot = QuestionBootstrap(out / "data", out / "runs", resamples=5)
    for label in ("full", "fastv@16"):
        for bench_name in ORDER:
            bench, units, weights = boot._bench(bench_name)
            _, records = read_predictions(str(out / "runs" / label / f"{bench_name}.predictions.jsonl"))
            preds = {k: r["text"] for k, r in records.items()}
            counts = counts_of(bench, units, preds)
            for w in weights:
                copy_ = _resampled_copy(bench, units, w)
                repeated = {s.id: preds[s.id.split("~")[0]] for s in copy_.samples}
                expected = headline(bench_name, copy_.score(repeated))
                assert headline_from(bench_name, w @ counts) == pytest.approx(expected, rel=1e-12), (label, bench_name, w)


def test_intervals_are_deterministic_contain_the_point_and_a_row_against_itself_has_width_zero(smoke_experiment):
    out, _ = smoke_experiment
    runs = _test_runs(out)
    full, other = runs["full"], runs["fastv@16"]
    kept = list(rel_base(headlines(full))[0])  # the benchmarks Avg. rel. % keeps (the smoke model scores SQA 0)
    a, b = QuestionBootstrap(out / "data", out / "runs"), QuestionBootstrap(out / "data", out / "runs")
    assert np.array_equal(a.rel([other], full, kept), b.rel([other], full, kept))  # fixed seed: the same draws
    for s_a, s_b in zip(a.scores(other).values(), b.scores(other).values()):
        assert np.array_equal(s_a, s_b)
    assert a.rel([full], full, kept) == pytest.approx(np.full(1000, 100.0))  # the full model against itself: 100 always
    same = a.rel([other], full, kept) - a.rel([other], full, kept)
    assert interval(same) == {"low": 0.0, "high": 0.0, "resamples": 1000}
    data = json.loads((out / "report.json").read_text())
    for row in data["table1_rows"]:
        ci = row["rel_questions"]
        assert ci is not None, row["method"]
        assert ci["low"] - 1e-9 <= row["rel"] <= ci["high"] + 1e-9, row["method"]
    assert data["table1_rows"][0]["rel_questions"]["low"] == pytest.approx(100.0)
    assert data["bootstrap"]["resamples"] == 1000 and data["bootstrap"]["seed"] == 0


def test_units_are_images_and_mme_is_drawn_within_its_subtasks(smoke_experiment):
    out, _ = smoke_experiment
    boot = QuestionBootstrap(out / "data", out / "runs")
    pope, units, weights = boot._bench("pope")
    assert len(pope.samples) == 18 * len(units.keys)  # 18 questions per image, one unit
    mme, units, weights = boot._bench("mme")
    assert len(mme.samples) == 2 * len(units.keys)
    for s in np.unique(units.strata):  # each subtask keeps its number of images in every draw
        assert (weights[:, units.strata == s].sum(axis=1) == (units.strata == s).sum()).all()
    assert units_of(mme).keys == units.keys


def test_the_report_carries_the_intervals_and_the_verdicts_in_numbers(smoke_experiment, tmp_path):
    out, results = smoke_experiment
    report = (out / "report.md").read_text()
    assert "| Avg. rel. % | drop | 95 % (questions) |" in report
    assert "| recovery (pts) | 95 % (q) |" in report and "B = 1000 resamples" in report
    data = json.loads((out / "report.json").read_text())
    rec = data["tables"]["recovery"]["16"]
    assert set(rec["questions"]) == {"trained", "twin", "recovery", "over_best_baseline"}
    assert all(ci is not None for ci in rec["questions"].values())
    assert "95 % interval over questions" in rec["recovery_verdict"]["said"]
    assert "95 % interval over questions" in data["findings"][-1]
    # Tables II and III on real prediction files: every ablation row is the trained run itself, so
    # each difference is zero on every draw and nothing is told apart
    ablated = Results(dict(results.scored), dict(results.skipped), dict(results.tuned))
    for run in [r for r in results.scored if r.weights == "lora-reverse"]:
        for w in ("lora-direct", "lora-standard", "full-reverse"):
            ablated.scored[replace(run, weights=w)] = results.scored[run]
    folder = tmp_path / "ablations"
    folder.mkdir()
    for name in ("data", "runs"):  # the finished run's files, read in place
        (folder / name).symlink_to(out / name)
    summary = write_report(folder, replace(PRESETS["smoke"], ablations=True), ablated, seconds=1.0, seed=0,
                           checkpoint=CHECKPOINT)
    assert len(summary["verdicts"]) == 4 and summary["verdicts"][0].startswith("LoRA ")
    for v in summary["verdicts"]:
        assert "+0.0 points, 95 % interval over questions +0.0..+0.0" in v and "not told apart" in v
    assert "| 95 % (questions) |" in (folder / "report.md").read_text().split("## Table II analogue")[1]
