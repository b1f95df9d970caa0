"""Resume without a pickle: the optimizer / scheduler / RNG state of a checkpoint is safetensors + JSON
(resume_state.py), and a resume from an epoch's end or from inside an epoch, with torch.load and
every unpickler disabled, ends with the weights of the uninterrupted run."""

from __future__ import annotations

import os
import pickle
import random
import shutil

import numpy as np
import pytest
import torch
from fixtures import make_dataset, save_tiny_model
from safetensors.torch import load_file

from adsc.training import TrainConfig, train
from adsc.training.checkpoints import ARGS_JSON, MARKER, complete_checkpoints
from adsc.training.resume_state import OPTIMIZER, RNG, SCHEDULER, load_rng, save_rng

STEPS = 4  # 8 records in batches of 2, 2 batches accumulated per step: 2 steps an epoch, 2 epochs
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle")


def _config(model, data, images, out):
    return TrainConfig.from_settings(
        model=model, data=data, image_folder=images, output_dir=out, layers=(2, 4), budget=20,
        global_batch_size=4, per_device_train_batch_size=2, max_steps=STEPS, save_steps=1, save_total_limit=STEPS,
        lora_r=8, lora_alpha=16, lora_dropout=0.1, learning_rate=3e-3, projector_lr=3e-3, dataloader_num_workers=0,
        logging_steps=1, seed=7, disable_tqdm=True,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_state")
    model = save_tiny_model(str(root / "model"))
    data, images = make_dataset(str(root), n=8)
    inputs = (model, data, images)
    summary = train(_config(*inputs, str(root / "ref")))
    return root, inputs, summary


def test_checkpoints_hold_no_pickle(reference):
    root, _, _ = reference
    found = complete_checkpoints(str(root / "ref"))
    assert [step for step, _ in found] == list(range(1, STEPS + 1))
    for _, folder in found:
        names = set(os.listdir(folder))
        # the Trainer's one unconditional pickle, training_args.bin, is replaced by training_args.json
        assert not [n for n in names if n.endswith(PICKLE_SUFFIXES)], (folder, sorted(names))
        assert {OPTIMIZER + ".safetensors", OPTIMIZER + ".json", SCHEDULER, RNG.format(0) + ".safetensors",
                RNG.format(0) + ".json", ARGS_JSON, "adapter_model.safetensors", "trainer_state.json", MARKER} <= names


@pytest.mark.parametrize("step", [2, 3], ids=["at-epoch-end", "inside-epoch"])
def test_resume_loads_no_pickle_and_equals_uninterrupted_run(reference, step, tmp_path, monkeypatch):
    root, inputs, summary = reference
    out = tmp_path / "resumed"
    shutil.copytree(root / "ref", out)
    os.remove(out / "train_summary.json")  # as if killed right after checkpoint-<step>
    for later, folder in complete_checkpoints(str(out)):
        if later > step:
            shutil.rmtree(folder)

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded during the resume")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    resumed = train(_config(*inputs, str(out)))

    assert resumed["resumed_from"].endswith(f"checkpoint-{step}")
    for key in ("steps", "samples_seen", "tokens"):
        assert resumed[key] == summary[key], key
    a = load_file(os.path.join(root / "ref", "adapter_model.safetensors"))
    b = load_file(os.path.join(out, "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5), k


def test_random_state_round_trip(tmp_path):
    save_rng(str(tmp_path), 3)
    drawn = (random.random(), np.random.rand(), torch.rand(2))
    random.random(), np.random.rand(), torch.rand(5)  # move every generator on
    assert load_rng(str(tmp_path), 3) and not load_rng(str(tmp_path), 4)
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert drawn[:2] == again[:2] and torch.equal(drawn[2], again[2])


def test_checkpoint_of_another_layout_is_refused_before_the_folder_changes(reference, tmp_path):
    root, inputs, _ = reference
    out = tmp_path / "older"
    shutil.copytree(root / "ref", out)
    os.remove(out / "train_summary.json")
    last = complete_checkpoints(str(out))[-1][1]
    os.remove(os.path.join(last, OPTIMIZER + ".safetensors"))  # as the stock layout's optimizer.pt would be
    before = sorted(os.path.relpath(os.path.join(r, f), out) for r, _, fs in os.walk(out) for f in fs)
    with pytest.raises(ValueError, match=r"checkpoint-4 has no adsc_optimizer.safetensors.*new --output_dir"):
        train(_config(*inputs, str(out)))
    assert sorted(os.path.relpath(os.path.join(r, f), out) for r, _, fs in os.walk(out) for f in fs) == before
