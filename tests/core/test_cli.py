"""The command line: schedule table/JSON/PNG, clean one-line errors, and the demo."""

import json

from adsc.cli import main


def test_schedule_prints_per_layer_table_and_saves_png(tmp_path, capsys):
    png = tmp_path / "tokens.png"
    assert main(["schedule", "--num-layers", "32", "--vision-tokens", "576", "--layers", "2", "8", "16", "24",
                 "--budget", "192", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "<- drop" in out and "average over 32 layers: 192" in out
    assert png.stat().st_size > 1000


def test_schedule_json_and_explicit_counts(capsys):
    assert main(["schedule", "--layers", "8", "--keep", "300", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["average"] == 369.0 and data["tokens_per_layer"][8] == 300


def test_unreachable_budget_is_one_clear_line(capsys):
    assert main(["schedule", "--layers", "8", "16", "24", "--budget", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adsc schedule: error: budget 64.0 cannot be reached") and "Traceback" not in err


def test_demo_runs(capsys):
    assert main(["demo", "--new-tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert "KV cache after generate" in out and "drop ratio" in out
