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


def _entry_points(**commands):
    """A stand-in for importlib.metadata.entry_points holding ``commands`` (name=module) in adsc's group."""
    from importlib.metadata import EntryPoint

    def entry_points(group):
        return [EntryPoint(name, module, group) for name, module in commands.items()] if group == "adsc.commands" else []
    return entry_points


def test_a_package_beside_the_library_adds_a_command_through_the_entry_point_group(monkeypatch, capsys):
    import sys
    import types

    import adsc.cli

    hello = types.ModuleType("hello_command", "Say hello (a command from another package).")
    hello.add_arguments = lambda p: p.add_argument("--name", default="world")
    hello.run = lambda args: print(f"hello {args.name}") or 0
    monkeypatch.setitem(sys.modules, "hello_command", hello)
    monkeypatch.setattr(adsc.cli, "entry_points", _entry_points(hello="hello_command"))
    assert main(["hello", "--name", "adsc"]) == 0 and capsys.readouterr().out == "hello adsc\n"


def test_experiment_without_the_testbed_says_how_to_install_it(monkeypatch, capsys):
    import adsc.cli

    monkeypatch.setattr(adsc.cli, "entry_points", _entry_points())
    assert main(["experiment", "--preset", "quick"]) == 2
    assert "pip install -e ./testbed" in capsys.readouterr().err
