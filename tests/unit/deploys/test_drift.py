"""`gept drift` parsing of pyinfra's plan and of the guard's zone lines."""

from __future__ import annotations

from gept.drift import DriftReport, parse_plan, parse_zones


def test_conditional_changes_alone_are_no_drift() -> None:
    plan = [{"name": "Restart engine", "hosts_with_change": [],
             "hosts_with_conditional_change": ["ampere"]}]
    hosts = parse_plan(plan, ["ampere", "hydra"])
    assert hosts == {"ampere": [], "hydra": []}
    assert DriftReport(hosts=hosts).changed is False


def test_certain_change_is_drift_and_keeps_its_conditionals() -> None:
    plan = [{"name": "Write engine.env", "hosts_with_change": ["ampere"],
             "hosts_with_conditional_change": []},
            {"name": "Restart engine", "hosts_with_change": [],
             "hosts_with_conditional_change": ["ampere"]}]
    report = DriftReport(hosts=parse_plan(plan, ["ampere", "hydra"]))
    assert report.changed is True
    assert [o["operation"] for o in report.hosts["ampere"]] == ["Write engine.env",
                                                                "Restart engine"]
    assert report.hosts["hydra"] == []


def test_zone_lines_are_parsed_and_noise_ignored() -> None:
    stderr = ('--> Loading\ngept-zone: {"host": "ampere", "zone": "restart-postgres", '
              '"plan_hash": "ab", "changes": []}\ngept-zone: {broken\n')
    assert parse_zones(stderr) == [{"host": "ampere", "zone": "restart-postgres",
                                    "plan_hash": "ab", "changes": []}]
