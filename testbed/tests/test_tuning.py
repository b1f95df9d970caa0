"""The validation split and the tuning grids (issue 23): settings are chosen on questions, images
and scenes the test split never has, and only among settings that reach the budget."""

import pytest

from adsc_testbed.dataset import generate, shared_between
from adsc_testbed.experiment import PRESETS, split_configs
from adsc_testbed.report import compare, spread
from adsc_testbed.runs import VALIDATION, Run, Tuning
from adsc_testbed.tuning import Setting, candidates, default_setting, fastv_grid, same_compression
from adsc_testbed.verdicts import gap_verdict


def test_validation_split_shares_no_question_image_or_scene_with_the_test_split(tmp_path):
    test_cfg, val_cfg = split_configs(PRESETS["smoke"], seed=0)
    assert val_cfg.seed != test_cfg.seed and val_cfg.num_train == 0  # its own generation seed, no training data
    generate(tmp_path / "test", test_cfg)
    generate(tmp_path / "val", val_cfg)
    assert shared_between(tmp_path / "test", tmp_path / "val") == {"question ids": [], "images": [], "scenes": [],
                                                                   "seeds": []}
    # the check itself sees what two splits share: a split against itself shares everything
    itself = shared_between(tmp_path / "val", tmp_path / "val")
    assert all(itself[k] for k in ("question ids", "images", "scenes", "seeds"))
    assert {k.split(":")[0] for k in itself["question ids"]} == {"gqa", "mme", "pope", "scienceqa", "textvqa", "vqav2"}


def test_only_settings_that_reach_the_budget_are_tried():
    # FastV at 16 of 144 on 12 layers: only K=1 (the first K layers see all 144 tokens)
    assert [s.name for s in candidates(fastv_grid((1, 2, 3)), "fastv", 16.0, 12)] == ["L1_score-last", "L1_score-mean"]
    assert [s.layers for s in candidates(fastv_grid((1, 2, 3, 4)), "fastv", 48.0, 12)][::2] == [(1,), (2,), (3,), (4,)]
    assert candidates((Setting((1,)), Setting((2,))), "tome", 16.0, 12) == []  # ToMe halves at most per layer
    assert default_setting("fastv") == Setting((1,)) and default_setting("pyramiddrop") == Setting((1, 3, 6, 9))
    assert Setting((1, 3, 6, 9), seed=2).name == "L1-3-6-9_seed2"
    assert not same_compression(Setting((1,), (("score", "mean"),)).config("fastv", 48.0), Setting((1,)).config("fastv", 48.0))


def test_every_preset_grid_starts_with_the_untuned_default():
    """A tie on validation keeps the earlier setting: the default, so tuning never changes a row for nothing."""
    for preset in PRESETS.values():
        for method, grid in preset.grid.items():
            first, default = grid[0].config(method, 48.0), default_setting(method).config(method, 48.0)
            assert same_compression(first, default), (preset.name, method)  # {"score": "last"} is FastV's default


def test_the_chosen_setting_is_the_best_on_validation_and_a_tie_keeps_the_first():
    assert Tuning("fastv", 48.0, {"L1_score-last": 40.0, "L3_score-last": 91.0, "L3_score-mean": 80.0}).chosen == "L3_score-last"
    assert Tuning("random", 16.0, {"L1-3-6-9": 55.0, "L1-3-6-9_seed1": 55.0}).chosen == "L1-3-6-9"
    assert Run("fastv", budget=48.0, setting="L3_score-mean", split=VALIDATION).label == "val-fastv[L3_score-mean]@48"


def test_rows_are_told_apart_only_when_both_the_question_and_the_seed_intervals_separate_them():
    lora, full = spread([70.1, 68.0, 72.3]), spread([76.3, 75.0, 77.9])
    apart = {"low": -9.0, "high": -3.5}
    assert compare("LoRA", lora, "full", full, apart) == (
        "LoRA 70.1 (68.0..72.3) vs full 76.4 (75.0..77.9): -6.3 points, 95 % interval over questions -9.0..-3.5, "
        "seeds 68.0..72.3 vs 75.0..77.9: told apart, full higher")
    # either interval alone can keep two rows together
    assert compare("LoRA", lora, "full", full, {"low": -12.0, "high": 0.4}).endswith(
        "not told apart (the question interval includes 0)")
    assert compare("a", spread([70.0, 74.0]), "b", spread([73.0, 75.0]), apart).endswith(
        "not told apart (the seed intervals overlap)")
    # one seed: the question interval decides alone; no prediction files: the seed spread does
    assert compare("a", spread([70.0]), "b", spread([80.0]), apart).endswith("one seed: told apart, b higher")
    assert compare("a", spread([70.0, 74.0]), "b", spread([73.0, 75.0])).endswith(
        "no question interval, seeds 70.0..74.0 vs 73.0..75.0: not told apart (the seed intervals overlap)")
    assert "no interval, so not compared" in compare("a", spread([70.0]), "b", spread([80.0]))
    gap = gap_verdict(spread([12.0, 19.1, 20.0]), {"low": 9.1, "high": 24.3})
    assert gap == {"told_apart": True, "said": "+17.0 points, 95 % interval over questions +9.1..+24.3, "
                                               "seeds +12.0..+20.0: told apart"}
    assert gap_verdict(spread([-1.0, 3.0]), {"low": 1.0, "high": 3.0})["told_apart"] is False
    with pytest.raises(ValueError):
        spread([])


def _result(level: float) -> dict:
    """A results.json with every headline at ``level`` % of a full model's (MME out of 2000)."""
    full = {"gqa": 50.0, "mme": 700.0, "pope": 98.0, "sqa": 40.0, "textvqa": 30.0, "vqav2": 70.0}
    benchmarks = {b: {"headline": v * level / 100} for b, v in full.items()}
    benchmarks["pope"]["scores"] = {"accuracy_mean": 98.0 * level / 100}
    benchmarks["mme"]["scores"] = {"subtasks": {"existence": {"acc": 100.0}, "color": {"acc": 100.0}}}
    return {"benchmarks": benchmarks}


def test_full_preset_report_states_settings_spreads_and_verdicts_in_numbers(tmp_path):
    """The full preset's report from made-up results: no model runs, every table's wiring checked."""
    from adsc_testbed.experiment import CHECKPOINT
    from adsc_testbed.report import write_report
    from adsc_testbed.runs import TWIN, Results

    preset, results = PRESETS["full"], Results()
    results.scored[Run("full")] = _result(100)
    for b in preset.budgets:
        for m in preset.baselines:
            results.scored[Run(m, budget=b)] = _result(40)
            results.tuned[(m, b)] = Tuning(m, b, {default_setting(m).name: 40.0, "L3_score-last": 90.0})
            results.scored[Run(m, budget=b, setting="L3_score-last")] = _result(90 if m == "fastv" else 50)
        for ph in preset.phases:
            results.scored[Run("adsc", budget=b, phase=ph)] = _result(60)
        results.tuned[("adsc", b)] = Tuning("adsc", b, {"L1-3-6-9": 60.0, "L1-2-4-8": 61.0})
        results.scored[Run("adsc", budget=b, setting="L1-2-4-8")] = _result(61)
    for seed in range(3):
        results.scored[Run("full", TWIN, seed=seed)] = _result(100)
        for b in preset.budgets:
            results.scored[Run("adsc", TWIN, b, setting="L1-2-4-8", seed=seed)] = _result(60 + seed)
            results.scored[Run("adsc", "lora-reverse", b, setting="L1-2-4-8", seed=seed)] = _result(70 + 2 * seed)
        for w, level in (("lora-direct", 71), ("lora-standard", 90), ("full-reverse", 80)):
            results.scored[Run("adsc", w, 16.0, setting="L1-2-4-8", seed=seed)] = _result(level + seed)
    summary = write_report(tmp_path, preset, results, seconds=1.0, seed=0, checkpoint=CHECKPOINT)
    report = (tmp_path / "report.md").read_text()
    assert "| fastv | 48 | L1 | 40.0 | L3_score-last | 90.0 | 90.0 | L1 40.0, L3_score-last 90.0 |" in report
    rec = summary["tables"]["recovery"]["48"]
    assert rec["adsc_layers"] == "L1-2-4-8" and rec["best_baseline"] == "fastv" and rec["best_baseline_rel"] == 90.0
    assert rec["seeds"]["recovery"]["values"] == pytest.approx([10.0, 11.0, 12.0])
    # made-up results have no prediction files: the seed columns stand, the question intervals say "–"
    assert "| 48 | L1-2-4-8 | 72.0 (70.0..74.0) | – | 61.0 (60.0..62.0) | – | +11.0 (+10.0..+12.0) | – |" in report
    assert summary["findings"][0].startswith("budget 48: trained ADSC 72.0 (70.0..74.0) % (95 % over questions –) "
                                             "does NOT beat the best tuned baseline (fastv, 90.0 %): -18.0 points, no "
                                             "question interval, seeds -20.0..-16.0: told apart; recovery over its twin: "
                                             "+11.0 points")
    verdicts = summary["verdicts"]
    assert verdicts[0] == ("LoRA 72.0 (70.0..74.0) vs full fine-tuning 81.0 (80.0..82.0): -9.0 points, no question "
                           "interval, seeds 70.0..74.0 vs 80.0..82.0: told apart, full fine-tuning higher")
    assert "not told apart (the seed intervals overlap)" in verdicts[1]  # reverse 70..74 against direct 71..73
    assert {r["method"] for r in summary["table1_rows"]} >= {"fastv untuned (L1)", "fastv tuned (L3_score-last)",
                                                             "**ADSC trained (LoRA, reverse) L1-2-4-8 (mean of 3 seeds)**"}
