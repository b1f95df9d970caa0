"""Pretraining's four stages, a few steps each, on a tiny generated dataset: wiring and resume."""

import json

import pytest

from adsc.testbed.cli import _drill_copies
from adsc.testbed.dataset import TestbedConfig, generate
from adsc.testbed.pretrain import drill_copies, pretrain
from adsc.testbed.world import GridSpec


def test_pretrain_runs_every_stage_and_skips_finished_ones(tmp_path):
    data = tmp_path / "data"
    generate(data, TestbedConfig(seed=0, num_images=2, num_train=8, spec=GridSpec(168, 14, 2)))
    kw = dict(warmup_steps=2, align_steps=1, drill_steps=1, qa_steps=1, batch_size=4, layers=2, hidden=32, save_steps=1,
              heldout=data)
    summary = pretrain(data, tmp_path / "run", **kw)
    for stage in ("init", "align", "drill", "qa"):
        assert (tmp_path / "run" / stage / "model.safetensors").is_file()
    assert set(summary["probe"]) >= {"matched", "shuffled", "blank"}
    assert json.loads((tmp_path / "run" / "qa" / "probe.json").read_text()) == summary["probe"]
    stamp = (tmp_path / "run" / "drill" / "model.safetensors").stat().st_mtime_ns
    pretrain(data, tmp_path / "run", **kw)  # a rerun finds every stage done and trains nothing
    assert (tmp_path / "run" / "drill" / "model.safetensors").stat().st_mtime_ns == stamp


def test_pretrain_continues_a_model_for_a_time_budget_with_drills_in_the_mix_after_reading_and_focus_stages(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as the command line gives them
    data = tmp_path / "data"
    generate(data, TestbedConfig(seed=0, num_images=2, num_train=8, spec=GridSpec(168, 14, 2)))
    pretrain(data, tmp_path / "base", warmup_steps=1, align_steps=0, qa_steps=1, batch_size=4, layers=2, hidden=32)
    summary = pretrain("data", "more", start_from="base/qa", drills_in_qa={"exist": 2, "read": 1, "sqa": 1}, qa_minutes=0.05,
                       qa_steps=100_000, batch_size=4, save_steps=1000, read_warmup_steps=2, text_scenes_minutes=0.05,
                       text_scenes_images=8, focus={"sqa": 2}, focus_minutes=0.05)
    assert not (tmp_path / "more" / "init").exists()  # the early stages are the start model's
    assert summary["read"]["start"] == "base/qa" and summary["read"]["steps"] == 2
    # then reading on one-string scenes, from the warmed-up model; the QA stage starts from that
    scenes = [json.loads(line) for line in (tmp_path / "more/text_scenes_data/annotations/train.jsonl").read_text().splitlines()]
    assert len(scenes) == 8 and all(not s["objects"] and len(s["texts"]) == 1 for s in scenes)
    text_mix = json.loads((tmp_path / "more" / "text_scenes_data.json").read_text())
    assert len(text_mix) == 4 * 8 and all("-drill_read-" in r["id"] for r in text_mix)
    assert json.loads((tmp_path / "more/text_scenes/adsc_train_args.json").read_text())["adsc"]["model"] == "more/read"
    assert summary["text_scenes"]["time_budget_minutes"] == 0.05
    # then the focus stage: the mix's ScienceQA records alone, two copies; the QA stage starts from it
    instruct = json.loads((data / "train" / "llava_instruct_synthetic.json").read_text())
    science = [r for r in instruct if "-scienceqa-" in r["id"]]
    assert science and json.loads((tmp_path / "more" / "focus_data.json").read_text()) == 2 * science
    assert json.loads((tmp_path / "more/focus/adsc_train_args.json").read_text())["adsc"]["model"] == "more/text_scenes"
    assert summary["focus"]["time_budget_minutes"] == 0.05
    assert json.loads((tmp_path / "more" / "qa" / "adsc_train_args.json").read_text())["adsc"]["model"] == "more/focus"
    assert summary["start_from"] == "base/qa"
    assert 1 <= summary["steps"] < 100_000 and summary["time_budget_minutes"] == 0.05  # the clock, not the cap, ended it
    mix = json.loads((tmp_path / "more" / "qa_data.json").read_text())
    drills = json.loads((data / "train" / "llava_drill_synthetic.json").read_text())
    reading = json.loads((data / "train" / "llava_drill_read_synthetic.json").read_text())
    assert mix == instruct + 2 * drills + reading + science
    assert summary["drills_in_qa"] == {"exist": 2, "read": 1, "sqa": 1}


def test_drill_copies_are_checked():
    assert drill_copies(3) == {"exist": 3} and drill_copies(0) == {}
    assert drill_copies({"read": 4, "count": 0, "sqa": 2}) == {"read": 4, "sqa": 2}
    with pytest.raises(ValueError, match="read=4"):
        drill_copies({"reading": 4})
    with pytest.raises(ValueError, match="copies >= 0"):
        drill_copies({"count": -1})
    # the command line: "--drills-in-qa 3" as before, or KIND=K pairs
    assert _drill_copies(["3"]) == 3 and _drill_copies(["exist=3", "read=4"]) == {"exist": 3, "read": 4}
    with pytest.raises(SystemExit, match="KIND=K"):
        _drill_copies(["read:4"])
    assert _drill_copies(["sqa=4"], "--focus") == {"sqa": 4}
    with pytest.raises(SystemExit, match="--focus"):  # no bare count: --focus has no default kind
        _drill_copies(["4"], "--focus")


def test_focus_needs_its_minutes_and_known_kinds_before_any_stage_runs(tmp_path):
    with pytest.raises(ValueError, match="--focus-minutes"):
        pretrain(tmp_path / "data", tmp_path / "run", focus={"sqa": 4})
    with pytest.raises(ValueError, match="focus .*science.* kinds"):
        pretrain(tmp_path / "data", tmp_path / "run", focus={"science": 4}, focus_minutes=1)
    assert not (tmp_path / "run").exists()


def test_text_scenes_hold_up_to_the_given_number_of_strings_and_no_objects():
    from adsc.testbed.pretrain import TEXT_SCENES, text_scenes

    assert text_scenes() == TEXT_SCENES
    three = text_scenes(3)
    assert (three.min_objects, three.max_objects, three.min_texts, three.max_texts) == (0, 0, 1, 3)
    for bad in (0, 6):  # five text colours: a sixth string could not be named by its colour
        with pytest.raises(ValueError, match="give 1 .* to 5"):
            text_scenes(bad)


def test_the_command_line_refuses_a_bad_recipe_before_writing_any_data(tmp_path, capsys):
    from adsc.cli import main

    for bad, message in ((["--focus", "sqa=4"], "--focus-minutes"), (["--text-scenes-strings", "9"], "to 5"),
                         (["--drills-in-qa", "reading=2"], "kinds")):
        assert main(["experiment", "--pretrain", "--out", str(tmp_path / "run"), *bad]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
