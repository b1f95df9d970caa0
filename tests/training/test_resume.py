"""SIGKILL mid-run, rerun the same command: same final weights, steps, samples and skips."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch
from fixtures import make_dataset, save_tiny_model
from safetensors.torch import load_file

from adsc.training.checkpoints import MARKER, STAGING, clean_litter, last_checkpoint, rotate
from adsc.training.cli import config_from_argv
from adsc.training.curriculum import phase_of
from adsc.training.run import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _args(model, data, images, out):
    return [
        "--model", model, "--data", data, "--image-folder", images, "--output-dir", out,
        "--layers", "2", "4", "--budget", "20", "--global-batch-size", "4", "--per-device-train-batch-size", "2",
        "--max-steps", "12", "--save-steps", "3", "--lora-r", "8", "--lora-alpha", "16", "--learning-rate", "3e-3",
        "--projector-lr", "3e-3", "--dataloader-num-workers", "0", "--logging-steps", "1", "--seed", "7",
        "--max-bad-share", "0.2", "--disable-tqdm", "true",
    ]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.join(ROOT, "src"))
    return env


def test_sigkill_then_rerun_reproduces_uninterrupted_run(tmp_path):
    import json

    model = save_tiny_model(str(tmp_path / "model"))
    data, images = make_dataset(str(tmp_path), n=16)
    with open(data) as fh:
        records = json.load(fh)
    records[5]["image"] = "coco/missing.png"  # one skip, counted before and after the kill
    with open(data, "w") as fh:
        json.dump(records, fh)

    reference = train(config_from_argv(_args(model, data, images, str(tmp_path / "ref"))))

    out = str(tmp_path / "killed")
    cmd = [sys.executable, "-m", "adsc", "train", *_args(model, data, images, out)]
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while last_checkpoint(out) is None or not last_checkpoint(out).endswith("checkpoint-6"):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.3)  # let it get into the next stretch of steps
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(out, "train_summary.json"))

    done = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(os.path.join(out, "train_summary.json")) as fh:
        resumed = json.load(fh)
    step = int(resumed["resumed_from"].rsplit("-", 1)[1])
    assert step >= 6
    phase = phase_of(step, reference["curriculum"]["phase_starts"])
    assert f"curriculum phase {phase + 1}/3 from step {step}:" in done.stderr

    for key in ("steps", "samples_seen", "samples_trained", "tokens", "answer_tokens", "skipped"):
        assert resumed[key] == reference[key], key
    assert reference["skipped"] == {"missing_image": 3}  # 12 steps x 4 = 3 epochs over 16 records
    a = load_file(os.path.join(tmp_path / "ref", "adapter_model.safetensors"))
    b = load_file(os.path.join(out, "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    assert any("modules_to_save" in k or "multi_modal_projector" in k for k in a)  # the projector is in there


def test_incomplete_checkpoints_are_ignored_and_litter_cleaned(tmp_path):
    out = tmp_path / "run"
    for step, complete in ((3, True), (6, True), (9, False)):
        d = out / f"checkpoint-{step}"
        d.mkdir(parents=True)
        if complete:
            (d / MARKER).write_text("{}")
    (out / STAGING / "checkpoint-12").mkdir(parents=True)  # a save killed halfway
    (out / ".trash-checkpoint-0").mkdir()  # a rotation killed halfway
    assert last_checkpoint(str(out)).endswith("checkpoint-6")
    clean_litter(str(out))
    assert not (out / STAGING).exists() and not (out / ".trash-checkpoint-0").exists()
    rotate(str(out), keep=1)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-6", "checkpoint-9"]
