"""Property tests: random argument values for the train / schedule / profile checks and malformed
records for the record reader give a named error (a ValueError of ours) or a valid result, never a
raw TypeError / KeyError / AttributeError / IndexError; and a run that fails changes no file."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adsc.cli import main
from adsc.training.checkpoints import MARKER
from adsc.training.cli import config_from_argv
from adsc.training.config import TrainConfig
from adsc.training.lock import LOCK
from adsc.training.preflight import check_environment
from adsc.training.records import MalformedRecord, load_json, parse_records
from adsc.training.rerun import RUN_ARGS, identity, run_record

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# values of every kind a user or a file can hand over
anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(-3, 40), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
number_text = st.one_of(
    st.integers(-50, 5000).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "1e-9", "nan", "inf", "-inf", "1.5", "abc", ""]),
)


def snapshot(folder: str) -> dict[str, bytes]:
    found = {}
    for base, _, names in os.walk(folder):
        for name in names:
            if name != LOCK:
                with open(os.path.join(base, name), "rb") as fh:
                    found[os.path.relpath(os.path.join(base, name), folder)] = fh.read()
    return found


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``adsc`` in process: its exit code and stderr; SystemExit (argparse) counts as its code."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as stop:
            rc = stop.code
    return rc, err.getvalue()


# ---------------------------------------------------------------- the record reader
record = st.one_of(
    anything,
    st.fixed_dictionaries({}, optional={
        "id": anything, "image": st.one_of(anything, st.sampled_from(["a.png", "/etc/passwd", "../x.png", ""])),
        "conversations": st.one_of(anything, st.lists(st.one_of(anything, st.fixed_dictionaries({}, optional={
            "from": st.one_of(anything, st.sampled_from(["human", "gpt", "user", "assistant", "system"])),
            "value": st.one_of(anything, st.sampled_from(["<image>\nq", "a", "<image>", "<image><image>"])),
        })), max_size=5)),
    }),
)


@QUICK
@given(st.lists(record, max_size=6), st.booleans())
def test_record_reader_names_every_problem(raw, skip):
    try:
        records, problems = parse_records(raw, skip_malformed=skip, source="x.json")
    except MalformedRecord as err:
        assert not skip and "x.json" in str(err) and "--skip-malformed" in str(err)
        return
    assert len(records) + len(problems) == len(raw)
    for rec in records:
        assert rec.rounds and all(isinstance(q, str) and isinstance(a, str) for q, a in rec.rounds)


@QUICK
@given(st.one_of(st.binary(max_size=60), st.lists(record, max_size=3).map(lambda r: json.dumps(r, default=str).encode())))
def test_data_file_reader_names_the_file(tmp_path_factory, content):
    path = str(tmp_path_factory.mktemp("f") / "data.json")
    with open(path, "wb") as fh:
        fh.write(content)
    try:
        data = load_json(path)
    except ValueError as err:
        assert path in str(err)
        return
    assert isinstance(data, list)


# ---------------------------------------------------------------- the training settings
FIELDS = ["lora_r", "lora_alpha", "lora_dropout", "learning_rate", "projector_lr", "weight_decay", "warmup_steps",
          "global_batch_size", "per_device_train_batch_size", "num_train_epochs", "max_steps", "max_length", "layers",
          "budget", "vision_tokens", "curriculum", "phase_fractions", "phase_steps", "max_bad_share",
          "dataloader_num_workers", "seed", "logging_steps", "save_steps", "save_total_limit", "merge", "mode", "pattern"]


@QUICK
@given(st.dictionaries(st.sampled_from(FIELDS), anything, max_size=4))
def test_train_config_is_valid_or_a_named_value_error(values):
    try:
        cfg = TrainConfig.from_settings(model="m", data="d.json", output_dir="o", **values)
    except ValueError as err:
        assert str(err)
        return
    assert (cfg.adsc.global_batch_size or 0) % cfg.training.per_device_train_batch_size == 0
    assert cfg.training.learning_rate > 0
    json.dumps(cfg.to_dict(), default=str)


FLAGS = ["--learning-rate", "--projector-lr", "--per-device-train-batch-size", "--global-batch-size",
         "--num-train-epochs", "--max-steps", "--max-length", "--budget", "--vision-tokens", "--lora-r", "--lora-dropout",
         "--warmup-steps", "--seed",
         "--dataloader-num-workers", "--save-steps", "--max-bad-share", "--weight-decay"]


@QUICK
@given(st.dictionaries(st.sampled_from(FLAGS), number_text, min_size=1, max_size=4))
def test_train_cli_checks_name_the_problem(inputs, flags):
    _, model, data, images = inputs
    argv = ["--model", model, "--data", data, "--image-folder", images, "--output-dir", "unused"]
    argv += [f"{k}={v}" for k, v in flags.items()]
    try:
        cfg = config_from_argv(argv)
        check_environment(cfg)
    except (ValueError, argparse.ArgumentError):
        return  # named: argparse's usage error or ours
    except SystemExit:
        return  # argparse with exit_on_error=False still exits on some errors (a usage line, code 2)


@QUICK
@given(st.dictionaries(st.sampled_from(FLAGS), number_text, max_size=3))
def test_a_train_run_that_fails_changes_no_file(inputs, flags):
    """Into a killed run's folder: refused, or failing at the (broken) model, never writing anything."""
    root, model, data, images = inputs
    broken = os.path.join(root, "broken-model")
    if not os.path.isdir(broken):  # config and a weights file that is not safetensors inside: fails to load
        shutil.copytree(model, broken, ignore=shutil.ignore_patterns("*.safetensors"))
        with open(os.path.join(broken, "model.safetensors"), "wb") as fh:
            fh.write(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    out = tempfile.mkdtemp(dir=root)
    base = ["--model", broken, "--data", data, "--image-folder", images, "--output-dir", out, "--layers", "2", "4",
            "--budget", "20", "--dataloader-num-workers", "0"]
    cfg = config_from_argv(base)
    os.makedirs(os.path.join(out, "checkpoint-3"))
    with open(os.path.join(out, "checkpoint-3", MARKER), "w") as fh:
        fh.write("{}")
    with open(os.path.join(out, RUN_ARGS), "w") as fh:
        json.dump(run_record(cfg, identity(cfg)), fh)
    before = snapshot(out)
    rc, err = run_cli(["train", *base, *[f"{k}={v}" for k, v in flags.items()]])
    assert rc == 2, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("adsc train: error: "), err
    assert snapshot(out) == before


# ---------------------------------------------------------------- adsc schedule and adsc profile
@QUICK
@given(st.lists(st.sampled_from(["--num-layers", "--vision-tokens", "--budget", "--ratio", "--layers", "--keep"]),
                min_size=1, max_size=3, unique=True), st.lists(number_text, min_size=3, max_size=3),
       st.sampled_from(["adsc", "random", "fastv", "pyramiddrop", "tome"]))
def test_schedule_cli_is_valid_or_one_named_line(names, values, method):
    argv = ["schedule", "--method", method]
    for name, value in zip(names, values):
        argv.append(f"{name}={value}")
    rc, err = run_cli(argv)
    assert rc in (0, 2), err
    if rc:
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("adsc schedule: error: "), err


@QUICK
@given(st.lists(st.sampled_from(["--text-tokens", "--new-tokens", "--batch", "--kv-bytes", "--budget", "--drop-ratio",
                                 "--layers"]), min_size=1, max_size=3, unique=True),
       st.lists(number_text, min_size=3, max_size=3))
def test_profile_cli_is_valid_or_one_named_line_and_writes_only_on_success(tmp_path_factory, names, values):
    out = str(tmp_path_factory.mktemp("profile"))
    argv = ["profile", "--json", "--out", out, *[f"{n}={v}" for n, v in zip(names, values)]]
    rc, err = run_cli(argv)
    assert rc in (0, 2), err
    if rc:
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("adsc profile: error: "), err
        assert os.listdir(out) == []
    else:
        assert os.listdir(out) == ["profile.json"]
