"""The word-readout probes (adsc_testbed.readout): a linear code is found, and the command runs on the committed model."""

import json

import torch

from adsc_testbed import GridSpec, TestbedConfig, generate
from adsc_testbed.experiment import CHECKPOINT
from adsc_testbed.readout import linear_probe, main
from adsc_testbed.world import VOCAB


def test_linear_probe_finds_a_linear_code_and_not_a_random_one():
    torch.manual_seed(0)
    words = torch.arange(len(VOCAB)).repeat(6)
    coded = torch.nn.functional.one_hot(words, len(VOCAB)).float() + 0.05 * torch.randn(len(words), len(VOCAB))
    assert linear_probe(coded[:152], words[:152], coded[152:], words[152:]) == 1.0
    noise = torch.randn(len(words), len(VOCAB))
    assert linear_probe(noise[:152], words[:152], noise[152:], words[152:]) < 0.3


def test_command_probes_tower_projector_and_every_layer_at_the_answer(tmp_path, capsys):
    root = tmp_path / "data"
    generate(root, TestbedConfig(seed=5, num_images=1, num_train=6, spec=GridSpec(168, 14, 2)))
    out = tmp_path / "readout.json"
    assert main([str(CHECKPOINT), str(root), str(root), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    layers = json.loads((CHECKPOINT / "config.json").read_text())["text_config"]["num_hidden_layers"]
    assert len(result["answer"]) == layers + 1  # the embeddings, then after each layer
    assert all(0 <= a <= 1 for a in [result["tower"], result["projector"], *result["answer"]])
    assert result["heldout_strings"] >= 6 and result["heldout_drills"] >= 6  # every image has a string
    assert "| projector output (same) |" in capsys.readouterr().out
