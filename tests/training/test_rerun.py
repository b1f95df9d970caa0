"""Reruns into an output directory: a resume or a finished run with other settings is refused by name,
result-free settings may change, a second trainer is refused while the first holds the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adsc.cli import main
from adsc.training import TrainConfig, train
from adsc.training.checkpoints import MARKER
from adsc.training.config import RESULT_FREE
from adsc.training.lock import LOCK, OutputDirBusy, output_lock
from adsc.training.rerun import (
    RUN_ARGS,
    RerunRefused,
    differences,
    identity,
    run_record,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config(inputs, out, **kw) -> TrainConfig:
    _, model, data, images = inputs
    base = dict(model=model, data=data, image_folder=images, output_dir=str(out), layers=(2, 4), budget=20.0,
                global_batch_size=2, per_device_train_batch_size=2, max_steps=4, lora_r=8, lora_alpha=16,
                learning_rate=3e-3, projector_lr=3e-3, dataloader_num_workers=0, save_steps=2, seed=7)
    return TrainConfig.from_settings(**{**base, **kw})


def fabricate(cfg: TrainConfig, finished: bool) -> dict[str, bytes]:
    """An output folder as a run with ``cfg`` leaves it: killed after a checkpoint, or finished."""
    out = cfg.output_dir
    os.makedirs(os.path.join(out, "checkpoint-2"))
    with open(os.path.join(out, "checkpoint-2", MARKER), "w") as fh:
        fh.write("{}")
    with open(os.path.join(out, RUN_ARGS), "w") as fh:
        json.dump(run_record(cfg, identity(cfg)), fh)
    if finished:
        with open(os.path.join(out, "train_summary.json"), "w") as fh:
            json.dump({"steps": 4}, fh)
    return snapshot(out)


def snapshot(folder) -> dict[str, bytes]:
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name != LOCK:  # the lock file holds the pid of the last process that took it
                with open(os.path.join(root, name), "rb") as fh:
                    out[os.path.relpath(os.path.join(root, name), folder)] = fh.read()
    return out


def test_resume_with_changed_lr_budget_seed_is_refused_by_name(inputs, tmp_path):
    cfg = config(inputs, tmp_path / "out")
    before = fabricate(cfg, finished=False)
    changed = config(inputs, tmp_path / "out", learning_rate=1e-3, budget=24.0, seed=8)
    with pytest.raises(RerunRefused) as err:
        train(changed)
    msg = str(err.value)
    assert "holds checkpoints" in msg and "new --output_dir" in msg
    assert "learning_rate: 0.003 -> 0.001" in msg and "budget: 20.0 -> 24.0" in msg and "seed: 7 -> 8" in msg
    assert snapshot(cfg.output_dir) == before  # the saved arguments are not overwritten


def test_finished_run_with_other_settings_is_refused_not_nothing_to_do(inputs, tmp_path, capsys):
    cfg = config(inputs, tmp_path / "out")
    before = fabricate(cfg, finished=True)
    _, model, data, images = inputs
    argv = ["train", "--model", model, "--data", data, "--image-folder", images, "--output-dir", cfg.output_dir,
            "--layers", "2", "4", "--budget", "30", "--global-batch-size", "2", "--per-device-train-batch-size", "2",
            "--max-steps", "4", "--lora-r", "8", "--lora-alpha", "16", "--learning-rate", "3e-3", "--projector-lr", "3e-3",
            "--seed", "7", "--save-steps", "2", "--dataloader-num-workers", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "finished run" in err and "budget: 20.0 -> 30.0" in err and "new --output_dir" in err
    assert snapshot(cfg.output_dir) == before
    # the same settings, some result-free ones changed: still "nothing to do", exit 0
    argv[argv.index("30")] = "20"
    argv[argv.index("--save-steps") + 1] = "1"
    assert main([*argv, "--logging-steps", "3", "--report-to", "none", "--disable-tqdm", "true"]) == 0
    assert snapshot(cfg.output_dir) == before


def test_result_free_settings_and_spellings_of_the_same_run_are_accepted(inputs, tmp_path, monkeypatch):
    root, _, data, _ = inputs
    cfg = config(inputs, tmp_path / "out", learning_rate=None)
    saved = run_record(cfg, identity(cfg))
    free = dict(output_dir=str(tmp_path / "elsewhere"), logging_steps=1, report_to="none", dataloader_num_workers=2,
                save_steps=1, save_total_limit=5, save_strategy="steps", max_bad_share=0.5, merge=True,
                allow_outside_image_folder=True)
    assert set(free) - {"logging_steps"} == set(RESULT_FREE)  # logging_*: result-free by prefix
    same = config(inputs, tmp_path / "out", **free, learning_rate=2e-4, disable_tqdm=True)  # 2e-4: the LoRA default
    assert differences(same, identity(same), saved) == []
    monkeypatch.chdir(root)
    relative = config(inputs, tmp_path / "out", learning_rate=None, data=os.path.relpath(data, root))
    assert differences(relative, identity(relative), saved) == []


def test_each_result_setting_and_the_data_contents_count(inputs, tmp_path):
    cfg = config(inputs, tmp_path / "out")
    saved = run_record(cfg, identity(cfg))
    for change in (dict(per_device_train_batch_size=1), dict(curriculum="direct"), dict(layers=[2, 3]),
                   dict(mode="full"), dict(lora_r=4), dict(max_steps=6), dict(optim="sgd"), dict(method="random")):
        other = config(inputs, tmp_path / "out", **change)
        assert [d.split(":")[0] for d in differences(other, identity(other), saved)] == list(change), change
    copy = tmp_path / "data.json"
    with open(cfg.adsc.data) as fh:
        records = json.load(fh)
    copy.write_text(json.dumps(records[:-1]))
    moved = config(inputs, tmp_path / "out", data=str(copy))
    assert [d.split(":")[0] for d in differences(moved, identity(moved), saved)] == ["data"]


def test_second_trainer_is_refused_with_the_first_ones_pid(inputs, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom adsc.training.lock import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputDirBusy, match=f"pid {holder.pid} on .* is writing .*another --output-dir"):
            train(config(inputs, out))
    finally:
        holder.kill()
        holder.wait()
    with output_lock(str(out)):  # the kernel dropped the killed holder's lock: no stale lock
        pass


def test_a_failed_first_run_leaves_no_folder(inputs, tmp_path):
    out = tmp_path / "new"
    with pytest.raises(ValueError, match="above the 36 per image"):  # found only once the model is loaded
        train(config(inputs, out, budget=34, curriculum="standard"))
    assert not out.exists()


def test_unwritable_output_dir_is_one_line(inputs, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _, model, data, images = inputs
    assert main(["train", "--model", model, "--data", data, "--image-folder", images,
                 "--output-dir", str(blocker / "out"), "--dataloader-num-workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adsc train: error: cannot write the output directory") and "--output-dir" in err
