"""``accelerate launch --num_processes 2`` on CPU (gloo): trains, and the result loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import torch
from fixtures import make_dataset, save_tiny_model

import adsc
from adsc.training import load_trained
from adsc.training.checkpoints import MARKER

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not installed")
def test_two_process_cpu_run_trains_and_loads(tmp_path):
    model = save_tiny_model(str(tmp_path / "model"))
    data, images = make_dataset(str(tmp_path), n=12)
    out = str(tmp_path / "out")
    cmd = [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "adsc", "train",
        "--model", model, "--data", data, "--image-folder", images, "--output-dir", out,
        "--layers", "2", "4", "--budget", "20", "--global-batch-size", "4", "--per-device-train-batch-size", "2",
        "--max-steps", "4", "--save-steps", "2", "--lora-r", "8", "--lora-alpha", "16", "--dataloader-num-workers", "0",
        "--disable-tqdm", "true",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.join(ROOT, "src"), CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(os.path.join(out, "train_summary.json")) as fh:
        summary = json.load(fh)
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert summary["samples_seen"] == 16  # 4 steps x global batch 4, summed over both processes
    ckpt = os.path.join(out, "checkpoint-4")
    # each process its own random state and counts, one optimizer state; the marker once both are written
    names = set(os.listdir(ckpt))
    assert {"adsc_rng_0.safetensors", "adsc_rng_1.safetensors", "adsc_counters_1.json", MARKER} <= names
    assert "adsc_optimizer.safetensors" in names and not [n for n in names if n.endswith((".pt", ".pth", ".bin"))]
    loaded = load_trained(out)
    ids = torch.tensor([[1] + [31] * 36 + [114, 124, 8]])
    with torch.no_grad():
        logits = loaded(input_ids=ids, pixel_values=torch.rand(1, 3, 48, 48)).logits
    assert torch.isfinite(logits).all()
    assert adsc.get_handle(loaded).last_trace.vision_tokens(0)[-1] == 8
