"""Pretraining recipes (lists of Stage records), a few steps per stage on a tiny generated dataset:
wiring, resume, and the checks that refuse a bad recipe before any stage runs."""

import json

import pytest

from adsc_testbed.cli import _drill_copies
from adsc_testbed.dataset import TestbedConfig, generate
from adsc_testbed.pretrain import PretrainSettings, Recipe, Stage, check_recipe, drill_copies, pretrain
from adsc_testbed.world import GridSpec


def test_pretrain_runs_every_stage_and_skips_finished_ones(tmp_path):
    data = tmp_path / "data"
    generate(data, TestbedConfig(seed=0, num_images=2, num_train=8, spec=GridSpec(168, 14, 2)))
    stages = [Stage("init", steps=2), Stage("align", steps=1), Stage("drill", steps=1), Stage("qa", steps=1)]
    recipe = Recipe(stages, PretrainSettings(batch_size=4, layers=2, hidden=32, save_steps=1))
    summary = pretrain(data, tmp_path / "run", recipe, heldout=data)
    for stage in ("init", "align", "drill", "qa"):
        assert (tmp_path / "run" / stage / "model.safetensors").is_file()
    assert set(summary["probe"]) >= {"matched", "shuffled", "blank"}
    assert json.loads((tmp_path / "run" / "qa" / "probe.json").read_text()) == summary["probe"]
    stamp = (tmp_path / "run" / "drill" / "model.safetensors").stat().st_mtime_ns
    # the recipe file alone is the run: its stages and every setting
    assert Recipe.read(tmp_path / "run" / "recipe.json") == recipe
    recorded = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert recorded["start_from"] is None and recorded["layers"] == 2 and recorded["lr"] == 1e-3
    pretrain(data, tmp_path / "run", Recipe.read(tmp_path / "run" / "recipe.json"), heldout=data)  # trains nothing
    assert (tmp_path / "run" / "drill" / "model.safetensors").stat().st_mtime_ns == stamp


def test_pretrain_continues_a_model_for_a_time_budget_with_drills_in_the_mix_after_reading_and_focus_stages(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as the command line gives them
    data = tmp_path / "data"
    generate(data, TestbedConfig(seed=0, num_images=2, num_train=8, spec=GridSpec(168, 14, 2)))
    small = PretrainSettings(batch_size=4, layers=2, hidden=32)
    pretrain(data, tmp_path / "base", Recipe([Stage("init", steps=1), Stage("qa", steps=1)], small))
    recipe = [Stage("read", steps=2), Stage("text_scenes", minutes=0.05, images=8),
              Stage("focus", minutes=0.05, copies={"sqa": 2}),
              Stage("qa", steps=100_000, minutes=0.05, copies={"exist": 2, "read": 1, "sqa": 1})]
    more = PretrainSettings(start_from="base/qa", batch_size=4, save_steps=1000)
    summary = pretrain("data", "more", Recipe(recipe, more))
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


def test_a_bad_recipe_is_refused_before_any_stage_runs(tmp_path):
    qa = Stage("qa", steps=1)
    for recipe, start_from, message in (
            ([Stage("init", steps=1), Stage("focus", copies={"sqa": 4}), qa], None, "--focus-minutes"),
            ([Stage("init", steps=1), Stage("focus", minutes=1, copies={"science": 4}), qa], None, "focus .*science.* kinds"),
            ([Stage("init", steps=1)], None, "the qa stage is the model"),
            ([qa, Stage("init", steps=1)], None, "in the order"),
            ([Stage("warmup", steps=1), qa], None, "unknown stage"),
            ([qa], None, "starts with the init stage"),
            ([Stage("align", steps=3), qa], "base/qa", "leave them out with start_from"),
            ([Stage("init", steps=1), Stage("align"), qa], None, "align needs steps")):
        with pytest.raises(ValueError, match=message):
            pretrain(tmp_path / "data", tmp_path / "run", Recipe(recipe, PretrainSettings(start_from=start_from)))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="unknown fields \\['step'\\]"):
        Stage.from_dict({"name": "qa", "step": 3})
    with pytest.raises(ValueError, match="unknown fields \\['batch'\\].*'batch_size'"):
        Recipe.from_dict({"batch": 4, "stages": []})
    with pytest.raises(TypeError, match="Recipe"):
        pretrain(tmp_path / "data", tmp_path / "run", [qa])
    checked = check_recipe(Recipe([Stage("qa", steps=5, copies={"read": 4, "count": 0})], PretrainSettings(start_from="m")))
    assert checked.stages == [Stage("qa", steps=5, copies={"read": 4})]


def test_a_rerun_into_a_folder_of_another_recipe_is_refused_naming_what_differs(tmp_path, capsys, adsc_main):
    from adsc_testbed.pretrain import check_same_recipe

    run = tmp_path / "run"
    run.mkdir()
    recorded = Recipe([Stage("init", steps=1), Stage("qa", steps=1)], PretrainSettings(seed=0))
    (run / "recipe.json").write_text(json.dumps(recorded.to_dict()))
    other = Recipe([Stage("init", steps=1), Stage("qa", steps=2), Stage("qa2", steps=1)], PretrainSettings(seed=1))
    with pytest.raises(ValueError) as refused:
        pretrain(tmp_path / "data", run, other)
    message = str(refused.value)
    for part in (f"{run} holds a run of another recipe", "seed: 0 -> 1", "qa.steps: 1 -> 2", "stage qa2: new",
                 "give another --out", f"delete {run}"):
        assert part in message
    assert "init" not in message.split("recorded -> now:")[1].split(")")[0]  # the same stage is not named
    assert Recipe.read(run / "recipe.json") == recorded  # refused before anything is written
    check_same_recipe(run, recorded)  # the same recipe again is a resume
    check_same_recipe(run, Recipe(recorded.stages, PretrainSettings(seed=0, save_steps=7, num_workers=2)))
    check_same_recipe(tmp_path / "new", other)  # a fresh folder holds no recipe
    # the command line refuses before it writes the scenes of the new seed into the old run's folder
    assert adsc_main(["experiment", "--pretrain", "--out", str(run), "--seed", "1"]) == 2
    assert "seed: 0 -> 1" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["recipe.json"]


def test_text_scenes_hold_up_to_the_given_number_of_strings_and_no_objects():
    from adsc_testbed.pretrain import TEXT_SCENES, text_scenes

    assert text_scenes() == TEXT_SCENES
    three = text_scenes(3)
    assert (three.min_objects, three.max_objects, three.min_texts, three.max_texts) == (0, 0, 1, 3)
    for bad in (0, 6):  # five text colours: a sixth string could not be named by its colour
        with pytest.raises(ValueError, match="give 1 .* to 5"):
            text_scenes(bad)


def test_the_command_line_refuses_a_bad_recipe_before_writing_any_data(tmp_path, capsys, adsc_main):
    for bad, message in ((["--focus", "sqa=4"], "--focus-minutes"), (["--text-scenes-strings", "9"], "to 5"),
                         (["--drills-in-qa", "reading=2"], "kinds")):
        assert adsc_main(["experiment", "--pretrain", "--out", str(tmp_path / "run"), *bad]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _flags(line: str):
    import argparse

    from adsc_testbed.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(line.split())


def test_the_flags_of_the_committed_commands_are_recipes(tmp_path):
    """pretrain_cmd.sh's first and last commands, as the stage records they ran."""
    from adsc_testbed.cli import recipe_from_args

    assert recipe_from_args(_flags("--pretrain --seed 0")) == Recipe([
        Stage("init", steps=600), Stage("align", steps=300), Stage("qa", steps=1000, copies={})], PretrainSettings())
    step7 = _flags("--pretrain --start-from runs/testbed_read4/qa --focus sqa=4 --focus-minutes 14 "
                   "--drills-in-qa exist=3 read=8 count=2 sqa=4 --qa-minutes 22 --qa-steps 1000000")
    stages = [Stage("focus", minutes=14, copies={"sqa": 4}),
              Stage("qa", steps=1_000_000, minutes=22, copies={"exist": 3, "read": 8, "count": 2, "sqa": 4})]
    recipe = Recipe(stages, PretrainSettings(start_from="runs/testbed_read4/qa"))
    assert recipe_from_args(step7) == recipe
    # the same as data: --recipe FILE, a list of stage records with the flags' settings
    (tmp_path / "r.json").write_text(json.dumps([{"name": "focus", "minutes": 14, "copies": {"sqa": 4}},
                                                {"name": "qa", "steps": 1_000_000, "minutes": 22,
                                                 "copies": {"exist": 3, "read": 8, "count": 2, "sqa": 4}}]))
    assert recipe_from_args(_flags(f"--pretrain --recipe {tmp_path / 'r.json'} --start-from runs/testbed_read4/qa")) == recipe
    # or a run's recipe.json: stages and settings from the file alone, the flags aside
    (tmp_path / "run.json").write_text(json.dumps({**Recipe(stages, PretrainSettings(seed=3, lr=5e-4)).to_dict()}))
    assert recipe_from_args(_flags(f"--pretrain --recipe {tmp_path / 'run.json'} --seed 0")) == Recipe(
        stages, PretrainSettings(seed=3, lr=5e-4))
    # a recipe.json written before the settings were part of it (start_from, seed, stages) still reads
    (tmp_path / "old.json").write_text(json.dumps({"start_from": "base/qa", "seed": 0, "stages": [
        {"name": "qa", "steps": 5, "minutes": None, "copies": {}, "strings": 1, "images": 3000}]}))
    assert Recipe.read(tmp_path / "old.json") == Recipe([Stage("qa", steps=5)], PretrainSettings(start_from="base/qa"))
