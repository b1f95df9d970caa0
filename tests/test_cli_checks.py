"""``adsc schedule`` and ``adsc profile``: each out-of-range argument is one named line, exit 2, no traceback
(each of these ended in a traceback or a misleading message before the checks)."""

import pytest

from adsc.cli import main

CASES = [
    (["schedule", "--num-layers", "0"], "--num-layers must be >= 1"),
    (["schedule", "--vision-tokens", "-5"], "--vision-tokens must be >= 1"),
    (["schedule", "--budget", "nan"], "--budget must be a finite number"),
    (["schedule", "--method", "fastv", "--budget", "inf"], "--budget must be a finite number"),
    (["schedule", "--budget", "600"], "--budget must be > 0.0 and <= 576"),
    (["schedule", "--keep", "-5", "1", "1", "1"], "--keep must be in [0, 576]"),
    (["schedule", "--keep", "600", "1", "1", "1"], "--keep must be in [0, 576]"),
    (["schedule", "--plot", "/etc/passwd/x.png"], "--plot /etc/passwd/x.png"),
    (["schedule", "--plot", "/no/such/folder/x.png"], "does not exist"),
    (["profile", "--batch", "0"], "--batch must be >= 1"),
    (["profile", "--kv-bytes", "0"], "--kv-bytes must be >= 1"),
    (["profile", "--text-tokens", "-5"], "--text-tokens must be >= 0"),
    (["profile", "--new-tokens", "0"], "--new-tokens must be >= 1"),
    (["profile", "--budget", "nan"], "--budget must be a finite number"),
    (["profile", "--out", "/etc/passwd/x"], "/etc/passwd is a file"),
    (["profile", "--reproduce-table4", "--out", "/etc/passwd/y"], "/etc/passwd is a file"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_argument_is_one_named_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"adsc {argv[0]}: error: ") and err.count("\n") == 1 and message in err, err
