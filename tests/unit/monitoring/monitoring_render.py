"""Helpers: render the monitoring templates the way the deploys do, with a sample context."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from gept.core.config import COLLECTOR_INTERVALS, COLLECTOR_METRICS_PORTS

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = REPO / "deploys" / "templates" / "monitoring"
PROMTOOL_CASES = Path(__file__).parent / "promtool"

# The contract's ports (docs/operations-reference.md) and collectors, as group data gives them.
SAMPLE_CONTEXT: dict[str, Any] = {
    "ports": {
        "engine": 8000, "status": 8080, "prometheus": 9090, "alertmanager": 9093,
        "grafana": 3001, "node_exporter": 9110, "postgres_exporter": 9187,
    },
    "collectors": dict(COLLECTOR_INTERVALS),
    "collector_ports": dict(COLLECTOR_METRICS_PORTS),
    "scrape_host": "127.0.0.1",
    "environment": "test",
}

Render = Callable[..., str]


def render(name: str, **overrides: Any) -> str:
    """Render one template with StrictUndefined, so a missing variable is an error."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    return env.get_template(name).render(**{**SAMPLE_CONTEXT, **overrides})


def alert_rules(text: str) -> list[dict[str, Any]]:
    """Every alerting rule of a rendered rules file."""
    doc = yaml.safe_load(text)
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def promtool() -> str:
    """Path of promtool (Debian's `prometheus` package); the tests need the real thing."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package "
                    "(scripts/setup-machine.sh does)")
    return path
