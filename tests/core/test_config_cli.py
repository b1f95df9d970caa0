"""adsc.config_cli: one set of compression flags for every command, and the config they describe."""

from __future__ import annotations

import argparse

import pytest

from adsc import CompressionConfig, ConfigError
from adsc.cli import command_parser
from adsc.config_cli import FIELDS, add_compression_arguments, compression_from_args


def parse(argv, **kwargs):
    parser = argparse.ArgumentParser(prog="t")
    add_compression_arguments(parser, **kwargs)
    return parser.parse_args(argv)


def test_flags_make_the_config_and_no_flag_means_no_compression():
    args = parse(["--method", "fastv", "--layers", "2", "--budget", "100", "--pattern", "stride1d"])
    assert compression_from_args(args) == CompressionConfig(method="fastv", layers=(2,), budget=100, pattern="stride1d")
    assert compression_from_args(parse([])) is None
    with pytest.raises(ConfigError, match="needs --budget or --drop-ratio"):
        compression_from_args(parse(["--layers", "2", "8"]))


def test_budget_and_drop_ratio_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        parse(["--budget", "100", "--drop-ratio", "0.5"])
    assert "not allowed with" in capsys.readouterr().err


def test_ratio_is_the_deprecated_spelling_of_drop_ratio(capsys):
    args = parse(["--ratio", "0.25"], aliases=True)
    assert args.drop_ratio == 0.25 and "--ratio is deprecated; use --drop-ratio" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # only where a command had it
        parse(["--ratio", "0.25"])


def test_a_file_is_amended_by_the_flags_and_fallback_fills_only_what_neither_gives(tmp_path):
    CompressionConfig(layers=(2, 8), budget=100, vision_tokens=400).save_pretrained(tmp_path)
    args = parse(["--compression", str(tmp_path), "--drop-ratio", "0.5"], file=True)
    config = compression_from_args(args, fallback={"vision_tokens": 36})  # the file says 400
    assert config == CompressionConfig(layers=(2, 8), drop_ratio=0.5, vision_tokens=400)
    inline = compression_from_args(parse(["--budget", "20"]), fallback={"vision_tokens": 36})
    assert inline.vision_tokens == 36
    with pytest.raises(ConfigError, match="--compression: no file"):
        compression_from_args(parse(["--compression", str(tmp_path / "nope")], file=True))


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="no compression flag for \\['ratio'\\]"):
        add_compression_arguments(argparse.ArgumentParser(), fields=("ratio",))


def test_every_command_spells_the_compression_flags_the_same():
    flags = {"--" + f.replace("_", "-") for f in FIELDS} | {"--ratio"}
    for name in ("eval", "train", "schedule"):
        for action in command_parser(name)._actions:
            spelled = set(action.option_strings) & flags
            if spelled:
                assert "--" + action.dest.replace("_", "-") in spelled, (name, action.option_strings)
                assert action.dest in FIELDS
