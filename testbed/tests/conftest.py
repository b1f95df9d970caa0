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
