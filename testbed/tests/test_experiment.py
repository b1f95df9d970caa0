"""The experiment's wiring, end to end, on the committed pretrained checkpoint (smoke preset)."""

import json
import os

import pytest

from adsc_testbed.experiment import CHECKPOINT, PRESETS, Experiment, with_overrides


def test_committed_checkpoint_is_small_and_loadable():
    files = {f: os.path.getsize(CHECKPOINT / f) for f in os.listdir(CHECKPOINT)}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    assert sum(files.values()) <= 20 * 2**20


def test_smoke_experiment_writes_every_table_and_resumes(smoke_experiment):
    out, _ = smoke_experiment
    report = (out / "report.md").read_text()
    for heading in ("Table I analogue", "Tuning on the validation split", "Recovery against the twin control",
                    "Table IV analogue", "Findings"):
        assert heading in report
    assert (out / "figure2.png").stat().st_size > 1000
    data = json.loads((out / "report.json").read_text())
    assert data["tables"]["recovery"]["16"]["best_baseline"] == "fastv"
    rows = {r["method"] for r in data["table1_rows"]}
    adsc = data["tables"]["recovery"]["16"]["adsc_layers"]  # the layer set chosen on validation
    assert {"full", "fastv untuned (L1)", f"**ADSC trained (LoRA, reverse) {adsc} (mean of 2 seeds)**"} <= rows
    assert any(m.startswith("fastv tuned (L1_score-") for m in rows)
    # the tuning table: each tuned method with every tried setting's validation score and the chosen one's test score
    tuning = {(t["method"], t["budget"]): t for t in data["tables"]["tuning"]}
    assert set(tuning) == {("fastv", 16.0), ("adsc", 16.0)}
    assert set(tuning[("fastv", 16.0)]["validation"]) == {"L1_score-last", "L1_score-mean"}
    assert tuning[("adsc", 16.0)]["chosen"] == adsc
    runs = {(r["method"], r["weights"], r["budget"], r["setting"], r["seed"], r["split"]): r for r in data["runs"]}
    setting = "" if adsc == "L1-3-6-9" else adsc
    assert runs[("adsc", "lora-reverse", 16.0, setting, 1, "test")]["label"] == (
        f"adsc-trained{f'[{setting}]' if setting else ''}-seed1@16")
    assert sum(r[5] == "val" for r in runs) == 5  # the full model and the four tried settings, on validation
    # two fine-tuning seeds: two twins, two trained ADSC; the recovery spread has one value per seed
    assert len(data["tables"]["recovery"]["16"]["seeds"]["recovery"]["values"]) == 2
    # a check that is not met is named, with its number, at the top of the findings
    missed = [c for c in data["checks"] if not c["met"]]
    if missed:
        assert data["findings"][0].startswith("Checks not met: ") and missed[0]["check"] in data["findings"][0]
    else:
        assert not data["findings"][0].startswith("Checks not met")


def test_rerunning_a_finished_folder_only_renders_the_report_again(smoke_experiment, monkeypatch):
    """How a finished run gets the intervals: rerun on its folder; nothing is evaluated or trained
    (no file under runs/ is written), the report is remade from the files already there."""
    import adsc_testbed.experiment as experiment

    out, _ = smoke_experiment
    def written():  # every file but the trainer's lock, which a finished run's train() still takes
        return {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file() and p.name != ".adsc_train.lock"}

    before = written()
    data = json.loads((out / "report.json").read_text())

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was evaluated again")

    monkeypatch.setattr(experiment, "evaluate", refuse)
    again = Experiment(out, PRESETS["smoke"], progress=False).run()
    assert written() == before
    assert again["table1_rows"] == data["table1_rows"]
    assert again["tables"]["recovery"] == data["tables"]["recovery"]


def test_overrides_are_said_in_the_notes():
    full = PRESETS["full"]
    assert with_overrides(full, questions=None, train_steps=None) is full
    small = with_overrides(full, questions=100, train_steps=150)
    assert (small.questions, small.train_steps, small.budgets) == (100, 150, full.budgets)
    assert small.notes[-1] == "full with overrides: questions 300 -> 100, train_steps 300 -> 150"
    with pytest.raises(ValueError, match="only questions and train_steps"):
        with_overrides(full, train_steps=0)


def test_relative_scores_leave_out_benchmarks_the_full_model_does_not_score_on():
    from adsc_testbed.report import rel_base

    kept, left_out = rel_base({"gqa": 47.5, "mme": 342.0, "textvqa": 1.8, "pope": 65.4})
    assert kept == {"gqa": 47.5, "mme": 342.0, "pope": 65.4} and left_out == ["textvqa"]
    assert rel_base({"mme": 150.0})[1] == ["mme"]


def test_each_run_keeps_the_folder_name_earlier_versions_wrote():
    """A Run's label is its folder under runs/: unchanged names let a rerun reuse finished steps."""
    from adsc_testbed.runs import TWIN, Run

    labels = {Run("full"): "full", Run("tome", budget=16.0): "tome@16",
              Run("adsc", budget=16.0, phase=0.5): "adsc-untrained-phase0.5@16", Run("full", TWIN): "twin-full",
              Run("adsc", TWIN, 16.0): "twin-adsc@16", Run("adsc", "lora-reverse", 16.0): "adsc-trained@16",
              Run("adsc", "lora-direct", 32.0): "adsc-direct@32", Run("adsc", "lora-standard", 48.0): "adsc-standard@48",
              Run("adsc", "full-reverse", 16.0): "adsc-fullft@16"}
    assert {run: run.label for run in labels} == labels
