"""The configuration reference: every GEPT_* variable the code reads is declared, and
docs/configuration.md says what the declarations say."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

from gept.core.controller import ControllerSettings
from gept.lab import topology

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return runpy.run_path(str(REPO / "scripts" / "config_reference.py"))


def test_every_variable_the_code_reads_is_declared(reference: dict[str, Any]) -> None:
    undeclared = {name: where[:3] for name, where in reference["read_in_code"]().items()
                  if name not in reference["declared"]()}
    assert not undeclared, ("GEPT_* variables read in the code but declared in no settings "
                            f"class (add a field, then run scripts/config_reference.py): "
                            f"{undeclared}")


def test_the_page_is_current(reference: dict[str, Any]) -> None:
    page = REPO / "docs" / "configuration.md"
    assert page.read_text() == reference["render"](), "run scripts/config_reference.py"


def test_every_variable_has_a_meaning(reference: dict[str, Any]) -> None:
    assert [v.name for _, v in reference["variables"]() if not v.description] == []


def test_the_lab_defaults_are_the_topologys() -> None:
    # The lab reads its variables itself (gept.lab.topology); the declaration must agree.
    s = ControllerSettings()
    assert (s.lab_prefix, s.lab_mirror, s.lab_extra_ca_dir) == (
        topology.DEFAULT_PREFIX, topology.DEFAULT_MIRROR, topology.DEFAULT_EXTRA_CA_DIR)
