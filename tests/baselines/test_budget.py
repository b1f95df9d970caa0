"""Every method's parameters are solved to the target average budget within one token."""

import json

import pytest

from adsc import CompressionConfig, ConfigError
from adsc.cli import main
from adsc.methods import names

METHODS = list(names())


@pytest.mark.parametrize("budget", [192, 128, 64])
@pytest.mark.parametrize("method", METHODS)
def test_budgets_of_the_paper_on_32_layers(method, budget):
    sched = CompressionConfig(method=method, budget=budget).schedule(32)
    assert abs(sched.average - budget) <= 1.0
    counts = sched.tokens_per_layer()
    assert counts[0] == 576 and all(a >= b for a, b in zip(counts, counts[1:]))


def test_published_defaults():
    fastv = CompressionConfig(method="fastv", drop_ratio=0.75).schedule(32)
    assert fastv.stage_layers == (2,) and fastv.keep_counts == (144,) and fastv.average == (576 * 2 + 144 * 30) / 32
    pdrop = CompressionConfig(method="pyramiddrop", drop_ratio=0.5).schedule(32)
    assert pdrop.stage_layers == (8, 16, 24) and pdrop.keep_counts == (288, 144, 72)
    assert CompressionConfig(method="pyramiddrop", budget=192).schedule(32).stage_layers == (8, 16, 24)
    assert CompressionConfig(method="pyramiddrop", budget=128).schedule(32).stage_layers == (2, 8, 16, 24)
    tome = CompressionConfig(method="tome", budget=64).schedule(32)
    assert tome.stage_layers[0] == 2
    prev = 576
    for count in tome.keep_counts:  # bipartite matching merges at most half per layer
        assert count >= (prev + 1) // 2
        prev = count


@pytest.mark.parametrize("budget", [30, 24, 19])
@pytest.mark.parametrize("method", ["fastv", "pyramiddrop", "tome"])
def test_any_reachable_budget_on_a_small_model(method, budget):
    layers = (2,) if method != "pyramiddrop" else (1, 3, 5)
    sched = CompressionConfig(method=method, layers=layers, budget=budget, vision_tokens=36).schedule(6)
    assert abs(sched.average - budget) <= 1.0


def test_unreachable_budgets_and_bad_options_say_why():
    with pytest.raises(ConfigError, match="lower K"):
        CompressionConfig(method="fastv", layers=(8,), budget=64).schedule(32)
    with pytest.raises(ConfigError, match="one pruning layer"):
        CompressionConfig(method="fastv", layers=(2, 8), budget=128).schedule(32)
    with pytest.raises(ConfigError, match="known"):
        CompressionConfig(method="tome", budget=128, options={"r": 3}).schedule(32)
    with pytest.raises(ConfigError, match="one of"):
        CompressionConfig(method="fastv", budget=128, options={"score": "max"}).schedule(32)


@pytest.mark.parametrize("method", ["fastv", "pyramiddrop", "tome", "random"])
def test_cli_prints_per_layer_counts(method, capsys):
    assert main(["schedule", "--method", method, "--budget", "128", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["tokens_per_layer"]) == 32 and abs(out["average"] - 128) <= 1
    assert main(["schedule", "--method", "fastv", "--budget", "128", "--layers", "2"]) == 0
    assert "average over 32 layers: 127.88" in capsys.readouterr().out
