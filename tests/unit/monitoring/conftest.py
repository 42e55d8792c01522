"""Fixtures for the monitoring tests: the templates rendered into a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from monitoring_render import render


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """Rendered prometheus.yml, rules/gept-alerts.yml and alertmanager.yml in a temp dir."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "gept-alerts.yml").write_text(render("alerts.yml.j2"))
    (tmp_path / "prometheus.yml").write_text(render("prometheus.yml.j2", rules_dir=str(rules)))
    (tmp_path / "alertmanager.yml").write_text(render("alertmanager.yml.j2"))
    return tmp_path
