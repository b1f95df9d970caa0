"""The method registry: one object per method, layers=None is the method's own default, the
engine runs whatever schedule and selector it is handed (it never tests a method's name)."""

import json
import pathlib
import re
from dataclasses import dataclass

import pytest
import torch

import adsc
from adsc import CompressionConfig, ConfigError, methods
from adsc.methods import Method, get_method, option, resolve
from adsc.methods.adsc import UniformSelector, uniform_schedule
from adsc.tiny import tiny_llava

from .helpers import llava_ids


def test_layers_none_is_each_methods_own_default_and_explicit_layers_are_used_as_given():
    assert CompressionConfig(budget=192).schedule(32).stage_layers == (2, 8, 16, 24)
    assert CompressionConfig(method="fastv", budget=192).schedule(32).stage_layers == (2,)
    # FastV spelled out with ADSC's layers is a FastV config with four layers: refused, not K=2
    with pytest.raises(ConfigError, match="fastv prunes once"):
        CompressionConfig(method="fastv", layers=(2, 8, 16, 24), budget=192).schedule(32)
    assert CompressionConfig(method="fastv", layers=(3,), budget=192).schedule(32).stage_layers == (3,)
    for name in methods.names():  # () is off for every method
        assert CompressionConfig(method=name, layers=(), budget=64).schedule(32).stage_layers == ()


def test_default_layers_too_deep_for_a_small_model_name_the_fix():
    with pytest.raises(ConfigError, match=r"adsc's default pruning layers \[2, 8, 16, 24\].*give layers="):
        CompressionConfig(drop_ratio=0.5).schedule(6)


def test_old_json_files_load_and_mean_the_same_and_the_default_round_trips(tmp_path):
    old = {"method": "adsc", "layers": [2, 8, 16, 24], "drop_ratio": None, "budget": 128, "vision_tokens": 576,
           "pattern": "grid2d", "phase": 0.5, "drop_position": "before", "seed": 0, "options": {}}
    (tmp_path / "adsc_config.json").write_text(json.dumps(old))
    loaded = CompressionConfig.from_pretrained(tmp_path)
    assert loaded.layers == (2, 8, 16, 24)
    assert loaded.schedule(32) == CompressionConfig(budget=128).schedule(32)
    default = CompressionConfig(budget=128)
    default.save_pretrained(tmp_path / "new")
    assert json.loads((tmp_path / "new" / "adsc_config.json").read_text())["layers"] is None
    assert CompressionConfig.from_pretrained(tmp_path / "new") == default


@pytest.mark.parametrize("name", ["adsc", "random", "fastv", "pyramiddrop", "tome"])
def test_unknown_options_are_refused_with_the_known_ones_listed(name):
    with pytest.raises(ConfigError, match=rf"unknown options \['nope'\] for method '{name}'; known options: "):
        CompressionConfig(method=name, budget=128, options={"nope": 1})


def test_option_types_are_checked():
    with pytest.raises(ConfigError, match="must be true or false"):
        CompressionConfig(method="tome", budget=128, options={"every_layer": 1})
    with pytest.raises(ConfigError, match="must be one of"):
        CompressionConfig(method="pyramiddrop", budget=128, options={"positions": "shift"})
    assert get_method("tome").options({"every_layer": False}).every_layer is False


def test_resolve_needs_no_model_and_score_free_selectors_give_their_kept_grid():
    schedule, selector = resolve(CompressionConfig(budget=128), 32)
    assert schedule.stage_layers == (2, 8, 16, 24) and isinstance(selector, UniformSelector)
    assert get_method("adsc").score_free and get_method("random").score_free
    assert not any(get_method(m).score_free for m in ("fastv", "pyramiddrop", "tome"))
    kept = selector.kept_in_grid((24, 24), 0)
    assert kept.dtype == torch.long and torch.equal(kept, kept.sort().values)
    assert kept.numel() == schedule.keep_counts[0]
    # the old entry point the serving code used still answers the same
    assert torch.equal(adsc.api._selector_for(CompressionConfig(budget=128), schedule).kept_in_grid((24, 24), 0), kept)


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(ConfigError, match="unknown method 'magic'; choose one of adsc, random, fastv"):
        get_method("magic")


class _EveryOther(Method):
    """A method added from outside the package: keeps every other vision token of each image."""

    @dataclass(frozen=True)
    class Options:
        start: int = option(0, doc="0 or 1: which parity survives")

    name = "every_other"
    default_layers = (2,)
    score_free = True

    def schedule(self, config, num_layers):
        return uniform_schedule(self, config.replace(drop_ratio=0.5), num_layers)

    def selector(self, config, schedule):
        start = self.options(config.options).start

        class Pick(UniformSelector):
            def kept_in_grid(self, grid, stage):
                return torch.arange(start, grid[0] * grid[1], 2)

        return Pick(0.5, 1, "grid2d", 0.5)


def test_adding_a_method_is_one_class_and_one_registration(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "every_other", _EveryOther())
    model = tiny_llava(layers=4)
    handle = adsc.compress(model, CompressionConfig(method="every_other", drop_ratio=0.5, options={"start": 1}))
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([llava_ids([1])]), pixel_values=torch.randn(1, 3, 48, 48))
        start = llava_ids([1]).index(adsc.tiny.IMAGE_TOKEN)
        assert handle.last_trace.vision_positions(2, 0).tolist() == list(range(start + 1, start + 36, 2))
    finally:
        handle.remove()


def test_the_engine_never_imports_a_method():
    engine = pathlib.Path(adsc.engine.__file__).parent
    for path in engine.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import) +(\S+)", path.read_text(), flags=re.M)
        assert not [m for m in imports if "methods" in m or "baselines" in m], path.name
