"""The testbed's suite runs from a checkout with testbed/src on the path (pyproject.toml's pytest
settings), installed or not: `adsc_main` is adsc's CLI with the commands testbed/pyproject.toml
registers, so `adsc experiment` is tested as installed without installing."""

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.fixture
def adsc_main(monkeypatch):
    import adsc.cli

    group = adsc.cli.ENTRY_POINT_GROUP
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][group]
    monkeypatch.setattr(adsc.cli, "entry_points", lambda group: [
        EntryPoint(name, module, group) for name, module in declared.items()] if group == adsc.cli.ENTRY_POINT_GROUP else [])
    return adsc.cli.main


@pytest.fixture(scope="session")
def smoke_experiment(tmp_path_factory):
    """The smoke preset run once for the session (minutes on a shared CPU): its folder, and the
    ``Results`` its report was written from."""
    import adsc_testbed.experiment as experiment

    out, seen = tmp_path_factory.mktemp("smoke") / "exp", {}

    def keep(out_, preset, results, **kw):
        seen["results"] = results
        return write_report(out_, preset, results, **kw)

    write_report = experiment.write_report
    experiment.write_report = keep
    try:
        experiment.Experiment(out, experiment.PRESETS["smoke"], progress=False).run()
    finally:
        experiment.write_report = write_report
    return out, seen["results"]
