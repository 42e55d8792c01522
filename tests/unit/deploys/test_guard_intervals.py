"""The collector-intervals zone reads what the collectors run with, not a record file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from deploys import guard  # noqa: E402


def test_intervals_are_read_from_what_runs_not_from_the_record() -> None:
    # intervals.json says 600 (edited or stale); the running containers run 300.
    fact = {"running": {"5m": 300}, "compose": {"5m": 600}, "record": {"5m": 600},
            "deployed": True}
    assert guard.deployed_intervals(fact) == {"5m": 300}
    assert guard.interval_changes(guard.deployed_intervals(fact), {"5m": 600}, True) == [
        {"collector": "5m", "from": 300, "to": 600}]
    # Containers stopped: the rendered compose file is what `up` would start.
    stopped = {**fact, "running": {}}
    assert guard.deployed_intervals(stopped) == {"5m": 600}


def test_deleting_the_intervals_record_does_not_blind_the_zone() -> None:
    blind: dict[str, Any] = {"running": {}, "compose": {}, "record": None, "deployed": True}
    assert guard.deployed_intervals(blind) is None
    assert guard.interval_changes(None, {"1h": 3600, "5m": 300}, project_deployed=True) == [
        {"collector": "1h", "from": "unknown", "to": 3600},
        {"collector": "5m", "from": "unknown", "to": 300}]
    # No project on the host at all: a first deploy, not a change.
    assert guard.interval_changes(None, {"5m": 300}, project_deployed=False) == []
