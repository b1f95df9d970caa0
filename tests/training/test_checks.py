"""Bad arguments, bad data files, image paths that leave the image folder, pickled weights: each is one
named line on the CLI (exit 2), found before the output directory is touched."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from adsc.cli import main
from adsc.training import TrainConfig, train
from adsc.training.records import (
    DataFileError,
    ImageOutsideFolder,
    MalformedRecord,
    check_image_paths,
    confined_path,
    load_json,
    parse_records,
)


def argv(inputs, out, *extra):
    _, model, data, images = inputs
    return ["train", "--model", model, "--data", data, "--image-folder", images, "--output-dir", str(out),
            "--layers", "2", "4", "--budget", "20", "--dataloader-num-workers", "0", *extra]


BAD = [
    (["--learning-rate", "0"], "learning_rate must be > 0"),
    (["--learning-rate", "-0.0001"], "learning_rate must be > 0"),
    (["--projector-lr", "nan"], "projector_lr must be a finite number"),
    (["--per-device-train-batch-size", "0"], "per_device_train_batch_size must be >= 1"),
    (["--global-batch-size", "-4"], "global_batch_size must be >= 1"),
    (["--global-batch-size", "10", "--per-device-train-batch-size", "4"], "not a multiple"),
    (["--num-train-epochs", "0"], "num_train_epochs must be > 0"),
    (["--max-steps", "0"], "max_steps must be > 0"),
    (["--max-steps", "-5"], "max_steps must be >= -1"),
    (["--max-length", "0"], "max_length must be >= 1"),
    (["--lora-r", "0"], "lora_r must be >= 1"),
    (["--lora-dropout", "1"], "lora_dropout must be >= 0.0 and < 1.0"),
    (["--warmup-steps", "-1"], "warmup_steps >= 0"),
    (["--weight-decay", "-0.1"], "weight_decay must be >= 0"),
    (["--seed", "-1"], "seed must be in"),
    (["--dataloader-num-workers", "-1"], "dataloader_num_workers must be >= 0"),
    (["--logging-steps", "0"], "non-zero --logging_steps"),
    (["--save-steps", "0"], "save_steps must be > 0"),
    (["--save-total-limit", "0"], "save_total_limit must be >= 1"),
    (["--max-bad-share", "2"], "max_bad_share"),
    (["--budget", "0"], "budget must be a positive number"),
    (["--budget", "inf"], "budget"),
    (["--vision-tokens", "0"], "vision_tokens must be positive"),
    (["--vision-tokens", "16"], "above the 16 vision tokens"),
    (["--layers", "2", "2"], "pruning layers must be distinct"),
    (["--layers", "-1"], "layers must be whole non-negative"),
    (["--lr-scheduler-type", "bogus"], "bogus is not a valid SchedulerType"),
    (["--phase-fractions", "0.5", "0.4", "0.4"], "phase_fractions must add up to 1"),
    (["--phase-fractions", "0.5", "0.5"], "phase_fractions needs 3 values"),
    (["--deepspeed", "/no/such/ds.json"], "--deepspeed /no/such/ds.json: no such file"),
    (["--report-to", "nosuchlogger"], "--report_to nosuchlogger is not a logger"),
    (["--attn-implementation", "bogus"], "attn_implementation must be one of"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_argument_is_one_named_line_and_nothing_is_written(inputs, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(argv(inputs, out, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("adsc train: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists()


@pytest.mark.parametrize("old,new", [("--lr", "--learning_rate"), ("--trainer-args", "own flag"),
                                     ("--num-workers", "--dataloader_num_workers"), ("--no-bf16", "--bf16 false")])
def test_renamed_flags_are_usage_errors_naming_the_new_one(inputs, tmp_path, capsys, old, new):
    with pytest.raises(SystemExit) as stop:
        main(argv(inputs, tmp_path / "out", old, "1"))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"{old} is now" in err and new in err and "Traceback" not in err and err.count("\n") <= 3, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_bf16_without_a_gpu_names_no_bf16(inputs, tmp_path, capsys):
    assert main(argv(inputs, tmp_path / "out", "--bf16")) == 2
    assert "pass --bf16 false" in capsys.readouterr().err


def test_python_api_refuses_wrong_types_instead_of_coercing(inputs):
    _, model, data, _ = inputs
    for bad in (dict(budget="192"), dict(layers=2), dict(layers=(2.5,)), dict(learning_rate="1e-4"), dict(merge="yes"),
                dict(per_device_train_batch_size=True), dict(no_such_setting=1)):
        with pytest.raises(ValueError):
            TrainConfig.from_settings(model=model, data=data, output_dir="unused", **bad)


def test_pickled_weights_are_refused_naming_the_conversion(inputs, tmp_path, capsys):
    """Training loads safetensors only: a model folder with just pytorch_model.bin is refused up front."""
    _, model, _, _ = inputs
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in os.listdir(model):
        if not name.endswith(".safetensors"):
            shutil.copy(os.path.join(model, name), pickled / name)
    (pickled / "pytorch_model.bin").write_bytes(b"a pickle we never open")
    args = argv(inputs, tmp_path / "out")
    args[args.index("--model") + 1] = str(pickled)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no safetensors weights (found pytorch_model.bin" in err and "use_safetensors=False" in err


# ---------------------------------------------------------------- image paths
def test_image_paths_outside_the_folder_are_named_errors(inputs, tmp_path):
    _, _, _, images = inputs
    raw = [
        {"id": "fine", "image": "coco/red.png",
         "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "x"}]},
        {"id": "abs", "image": "/etc/passwd", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "x"}]},
        {"id": "up", "image": "coco/../../secret.png",
         "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "x"}]},
    ]
    records, _ = parse_records(raw, skip_malformed=False)
    with pytest.raises(ImageOutsideFolder) as err:
        check_image_paths(records, images, "data.json")
    msg = str(err.value)
    assert msg.startswith("data.json: 2 image path(s) lead outside --image-folder")
    assert "record 'abs' (#1): '/etc/passwd'" in msg and "record 'up' (#2)" in msg and "'fine'" not in msg
    assert "--allow-outside-image-folder" in msg
    assert confined_path(images, "coco/./red.png") == os.path.join(os.path.abspath(images), "coco", "red.png")
    assert confined_path(images, "../images/coco/red.png") is not None  # climbs out and back in: still inside
    assert confined_path(None, "/etc/passwd") is None


def test_train_refuses_an_escaping_record_unless_allowed(inputs, tmp_path):
    _, model, data, images = inputs
    with open(data) as fh:
        records = json.load(fh)
    records[2]["image"] = "../" * 8 + "etc/passwd"
    bad = tmp_path / "escape.json"
    bad.write_text(json.dumps(records))
    cfg = dict(model=model, data=str(bad), image_folder=images, output_dir=str(tmp_path / "out"), layers=(2, 4),
               budget=34, curriculum="standard", dataloader_num_workers=0)
    with pytest.raises(ImageOutsideFolder, match=f"{bad}: 1 image path.*record 'r2' \\(#2\\)"):
        train(TrainConfig.from_settings(**cfg))
    assert not (tmp_path / "out").exists()
    # allowed: the check passes and the run goes on (to the next, deliberate, error)
    with pytest.raises(ValueError, match="above the 36 per image"):
        train(TrainConfig.from_settings(**cfg, allow_outside_image_folder=True))


# ---------------------------------------------------------------- data files
def write(tmp_path, name, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_bad_data_files_are_named_with_the_fix(tmp_path):
    not_json = write(tmp_path, "a.json", b'[{"id": 1},\n{"id": 2')
    with pytest.raises(DataFileError, match=r"a.json is neither a JSON list .* nor JSON lines \(line 1: .*fix that line"):
        load_json(not_json)
    lines = write(tmp_path, "b.jsonl", b'{"id": 1}\n{"id": 2}\n{"id": 3\n')
    with pytest.raises(DataFileError, match=r"b.jsonl .*line 3"):
        load_json(lines)
    with pytest.raises(DataFileError, match=r"c.json must hold a JSON list of records .* found a dict"):
        load_json(write(tmp_path, "c.json", b'{"records": []}'))
    with pytest.raises(DataFileError, match=r"d.json is not UTF-8"):
        load_json(write(tmp_path, "d.json", b'[{"id": "\xff"}]'))
    with pytest.raises(FileNotFoundError, match="pass the JSON file with --data"):
        load_json(str(tmp_path / "missing.json"))
    assert load_json(write(tmp_path, "e.jsonl", b'{"id": 1}\n\n{"id": 2}\n')) == [{"id": 1}, {"id": 2}]


def test_records_missing_fields_name_the_file_the_record_and_the_fix():
    raw = [{"id": "ok", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
           {"id": "nofield"}, [1, 2], {"id": "noval", "conversations": [{"from": "human"}]}]
    with pytest.raises(MalformedRecord) as err:
        parse_records(raw, skip_malformed=False, source="mix.json")
    msg = str(err.value)
    assert msg.startswith("3 malformed record(s) in mix.json")
    assert "record 'nofield' (#1): 'conversations'" in msg and "record #2: expected an object" in msg
    assert "record 'noval' (#3): turn 0" in msg and "--skip-malformed" in msg


def test_cli_reports_a_bad_data_file_in_one_line_before_writing(inputs, tmp_path, capsys):
    bad = write(tmp_path, "bad.json", b"{oops")
    args = argv(inputs, tmp_path / "out")
    args[args.index("--data") + 1] = bad
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"adsc train: error: {bad} is neither a JSON list") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
