"""Pretraining's four stages, a few steps each, on a tiny generated dataset: wiring and resume."""

import json

from adsc.testbed.dataset import TestbedConfig, generate
from adsc.testbed.pretrain import pretrain
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
