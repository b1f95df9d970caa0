"""Property tests: any dict or any file handed to the config gives a ConfigError or a valid config."""

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adsc import CompressionConfig, ConfigError

FIELDS = ["method", "layers", "drop_ratio", "budget", "vision_tokens", "pattern", "phase", "drop_position", "seed", "options"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 1000), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["adsc", "random", "fastv", "pyramiddrop", "tome", "grid2d", "stride1d", "before", "after", "192"]),
    st.text(max_size=5),
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(st.integers(-2, 40), st.floats(0, 40), st.booleans(), st.text(max_size=2)), max_size=5),
    st.dictionaries(st.sampled_from(["score", "positions", "every_layer", "proportional_attention", "x"]), scalars, max_size=3),
)
anything = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=4)), values, max_size=7)
plausible = st.fixed_dictionaries(
    {"method": st.sampled_from(["adsc", "random", "fastv", "pyramiddrop", "tome"])},
    optional={
        "layers": st.one_of(st.none(), st.lists(st.integers(0, 33), max_size=4, unique=True)),
        "vision_tokens": st.integers(1, 600),
        "pattern": st.sampled_from(["grid2d", "stride1d"]), "phase": st.floats(0, 0.99),
        "drop_position": st.sampled_from(["before", "after"]), "seed": st.integers(0, 9),
    },
)


@st.composite
def near_valid(draw):
    """A plausible config with up to two fields replaced by anything (most draws are valid or one step off)."""
    data = draw(plausible)
    amount = draw(st.sampled_from(["budget", "drop_ratio"]))  # exactly one of the two
    data[amount] = draw(st.floats(1, 600) if amount == "budget" else st.floats(0, 0.99))
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
        data[key] = draw(values)
    return data


configs = st.one_of(anything, near_valid())
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_valid(cfg: CompressionConfig) -> None:
    assert CompressionConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.layers is None or all(type(x) is int for x in cfg.layers)
    assert (cfg.budget is None) != (cfg.drop_ratio is None)
    try:
        sched = cfg.schedule(32)
    except ConfigError:
        return
    assert sched.num_layers == 32 and all(0 <= c <= cfg.vision_tokens for c in sched.keep_counts)
    assert not math.isnan(sched.average)


@SETTINGS
@given(configs)
def test_from_dict_gives_a_config_error_or_a_valid_config(data):
    try:
        cfg = CompressionConfig.from_dict(data)
    except ConfigError:
        return
    _check_valid(cfg)


@SETTINGS
@given(st.one_of(configs.map(json.dumps), st.text(max_size=30), values.map(json.dumps), st.binary(max_size=20)))
def test_from_pretrained_gives_a_config_error_or_a_valid_config(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "adsc_config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    try:
        cfg = CompressionConfig.from_pretrained(path)
    except ConfigError as err:
        assert str(path) in str(err)
        return
    _check_valid(cfg)
