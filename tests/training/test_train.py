"""One short training run on fabricated data (tiny LLaVA, compression on), checked several ways."""

from __future__ import annotations

import json
import os

import pytest
import torch
from fixtures import make_dataset, save_tiny_model
from transformers import TrainerCallback

import adsc
from adsc.training import TrainConfig, load_trained, train
from adsc.training.curriculum import phase_of, phase_starts

STEPS = 24
LAYERS = 6


class BudgetProbe(TrainerCallback):
    """Per optimizer step: the handle's budget and the vision tokens each layer really processed."""

    def __init__(self):
        self.budget, self.layer_tokens = {}, {}

    def on_step_begin(self, args, state, control, model=None, **kw):
        adsc.get_handle(model).last_trace = None

    def on_step_end(self, args, state, control, model=None, **kw):
        handle = adsc.get_handle(model)
        step = state.global_step - 1
        self.budget[step] = handle.config.budget
        trace = handle.last_trace
        if trace is not None:
            counts = [trace.vision_tokens(b) for b in range(trace.batch_size)]
            self.layer_tokens[step] = max(counts, key=lambda c: c[0])  # a sample that has an image


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("train"))
    model_dir = save_tiny_model(os.path.join(root, "model"), layers=LAYERS)
    data, images = make_dataset(root, n=12)
    probe = BudgetProbe()
    cfg = TrainConfig.from_settings(
        model=model_dir, data=data, image_folder=images, output_dir=os.path.join(root, "out"),
        layers=(2, 4), budget=20, global_batch_size=4, per_device_train_batch_size=4, max_steps=STEPS,
        lora_r=8, lora_alpha=16, learning_rate=3e-3, projector_lr=3e-3, warmup_steps=0.0, dataloader_num_workers=0,
        save_steps=100, logging_steps=1, merge=True,
    )
    summary = train(cfg, callbacks=[probe])
    return cfg, summary, probe


def test_phase_starts_rule():
    assert phase_starts(24, 3) == [0, 8, 16]
    assert phase_starts(10, 3) == [0, 3, 7]
    assert phase_starts(10, 3, fractions=[0.5, 0.3, 0.2]) == [0, 5, 8]
    assert phase_starts(10, 3, steps=[2, 2, 6]) == [0, 2, 4]
    assert phase_starts(10, 1) == [0]
    assert [phase_of(s, [0, 3, 7]) for s in (0, 2, 3, 6, 7, 9)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        phase_starts(10, 3, steps=[2, 2, 2])


def test_phase_boundaries_and_budgets_seen(run):
    cfg, summary, probe = run
    assert summary["curriculum"] == {"kind": "reverse", "phase_starts": [0, 8, 16], "budgets": [16.0, 18.0, 20.0]}
    expected = {s: 16.0 if s < 8 else 18.0 if s < 16 else 20.0 for s in range(STEPS)}
    assert probe.budget == expected
    for step, counts in probe.layer_tokens.items():
        want = adsc.CompressionConfig(layers=(2, 4), budget=expected[step], vision_tokens=36).schedule(LAYERS)
        assert counts == want.tokens_per_layer(), step  # the model really ran at that budget
    assert len(probe.layer_tokens) == STEPS  # every step had images
    logged = {h["step"]: h["vision_budget"] for h in summary["log_history"] if "loss" in h}
    assert logged[8] == 16.0 and logged[9] == 18.0 and logged[17] == 20.0


def test_loss_falls_with_compression_on(run):
    _, summary, _ = run
    losses = [h["loss"] for h in summary["log_history"] if "loss" in h]
    assert len(losses) == STEPS
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0], losses


def test_summary_counts(run):
    _, summary, _ = run
    assert summary["steps"] == STEPS and summary["samples_seen"] == STEPS * 4
    assert summary["skipped"] == {} and summary["tokens"] > summary["answer_tokens"] > 0


def test_output_loads_in_one_call_and_merges(run):
    cfg, _, _ = run
    out = cfg.output_dir
    model = load_trained(out)
    handle = adsc.get_handle(model)
    assert handle is not None and handle.config.budget == 20
    merged = load_trained(os.path.join(out, "merged"))
    ids = torch.tensor([[1] + [31] * 36 + [114, 124, 8]])
    pix = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        a = model(input_ids=ids, pixel_values=pix).logits
        b = merged(input_ids=ids, pixel_values=pix).logits
        c = load_trained(out, merge=True)(input_ids=ids, pixel_values=pix).logits
    assert torch.allclose(a, b, atol=1e-4) and torch.allclose(a, c, atol=1e-4)
    assert adsc.get_handle(merged).last_trace.vision_tokens(0) == [36, 36, 17, 17, 8, 8]


def test_nothing_pickled_in_the_output_or_its_checkpoints(run):
    """No pickle anywhere in the folder (a resume that loads none: test_resume_state.py)."""
    cfg, _, _ = run
    pickled = [os.path.join(r, f) for r, _, fs in os.walk(cfg.output_dir) for f in fs
               if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert pickled == []
    assert os.path.isfile(os.path.join(cfg.output_dir, f"checkpoint-{STEPS}", "adsc_optimizer.safetensors"))
    with open(os.path.join(cfg.output_dir, "adsc_config.json")) as fh:
        assert json.load(fh)["budget"] == 20


def test_finished_run_is_not_trained_again(run):
    cfg, summary, _ = run
    again = train(cfg)
    assert again["steps"] == summary["steps"]


def test_full_fine_tuning_trains_and_loads(tmp_path):
    model_dir = save_tiny_model(str(tmp_path / "model"))
    data, images = make_dataset(str(tmp_path), n=4)
    cfg = TrainConfig.from_settings(
        model=model_dir, data=data, image_folder=images, output_dir=str(tmp_path / "out"), mode="full",
        layers=(2, 4), budget=20, curriculum="direct", global_batch_size=2, per_device_train_batch_size=2, max_steps=2,
        dataloader_num_workers=0, save_steps=100, gradient_checkpointing=False,
    )
    assert train(cfg)["steps"] == 2
    model = load_trained(cfg.output_dir)
    assert type(model).__name__ == "LlavaForConditionalGeneration" and adsc.get_handle(model).config.budget == 20


def test_too_many_bad_images_stop_the_run():
    from types import SimpleNamespace

    from adsc.training.trainer import COUNTERS, ADSCTrainer, TooManyBadSamples

    t = ADSCTrainer.__new__(ADSCTrainer)  # only the counting logic, no model
    t.args = SimpleNamespace(world_size=1)
    t.counters, t.first_bad, t.max_bad_share, t.dataset_size = dict.fromkeys(COUNTERS, 0), None, 0.1, 20
    meta = {"ids": ["a"], "skipped": [("x1", "missing_image")], "tokens": 5, "answer_tokens": 1}
    t._count(meta)  # 1 bad of 20 allowed up to 2
    t._count({**meta, "skipped": [("x2", "unreadable_image")]})
    with pytest.raises(TooManyBadSamples, match="record x1 .*missing image.*--max-bad-share"):
        t._count({**meta, "skipped": [("x3", "missing_image")]})
