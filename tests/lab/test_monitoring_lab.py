"""Monitoring in the lab: Prometheus scrapes the engine and the collectors, the rules the
deploys rendered are loaded, and stale predictions make the alert fire (and reach
Alertmanager).

Prometheus and Alertmanager listen on 127.0.0.1 inside Ampere (the firewall opens only SSH
and the engine), so their APIs are queried on the host over SSH, as an operator would
through a tunnel. Needs the deploys' ``converged_lab`` fixture.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from breakage import predictions_stale, wait_for

from gept.core.config import COLLECTOR_INTERVALS

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "monitoring"))
from monitoring_render import alert_rules, render

RULES_DIR = "/opt/gept/monitoring/rules"
FAST_GROUP = "labtest-fast"
FAST_RULES = f"{RULES_DIR}/{FAST_GROUP}.yml"


def api(lab: LabHandle, url: str, method: str = "GET") -> Any:
    """JSON from an HTTP API on Ampere's loopback."""
    out = lab.sh("ampere", f"curl -fsS -m 10 -X {method} {shlex.quote(url)}")
    return json.loads(out) if out.strip() else None


def targets(lab: LabHandle) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api(
        lab, "http://127.0.0.1:9090/api/v1/targets?state=active")["data"]["activeTargets"]
    return found


def _all_up(lab: LabHandle, job: str) -> bool:
    mine = [t for t in targets(lab) if t["labels"]["job"] == job]
    return bool(mine) and all(t["health"] == "up" for t in mine)


@pytest.mark.parametrize("job", ["engine", "collectors", "collector-status", "node",
                                 "postgres", "prometheus", "alertmanager"])
def test_prometheus_scrapes_job_and_targets_are_up(converged: LabHandle, job: str) -> None:
    wait_for(f"Prometheus job {job} to be up", lambda: _all_up(converged, job), timeout=90)
    mine = [t for t in targets(converged) if t["labels"]["job"] == job]
    if job == "collectors":
        assert len(mine) == 6, [t["scrapeUrl"] for t in mine]


def test_prometheus_has_the_engine_and_collector_metrics(converged: LabHandle) -> None:
    def query(expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = api(
            converged, f"http://127.0.0.1:9090/api/v1/query?query={expr}")["data"]["result"]
        return result

    wait_for("gept_predictions_age_seconds in Prometheus",
             lambda: bool(query("gept_predictions_age_seconds")), timeout=90)
    intervals = {r["metric"]["collector"]: float(r["value"][1])
                 for r in query("max%20by%20(collector)%20(gept_collector_interval_seconds)")}
    assert intervals == {name: float(s) for name, s in COLLECTOR_INTERVALS.items()}


def test_every_rendered_alert_is_loaded(converged: LabHandle) -> None:
    groups = api(converged, "http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    expected = {r["alert"] for r in alert_rules(render("alerts.yml.j2"))}
    assert expected <= loaded, f"missing: {sorted(expected - loaded)}"


def _age(lab: LabHandle) -> float:
    """gept_predictions_age_seconds as Prometheus last scraped it (+Inf when absent)."""
    result = api(lab, "http://127.0.0.1:9090/api/v1/query?query="
                      "gept_predictions_age_seconds")["data"]["result"]
    return float(result[0]["value"][1]) if result else float("inf")


def _fast_predictions_rule() -> str:
    """The real PredictionsStale rule from the template, with ``for: 0s`` for the lab."""
    doc = yaml.safe_load(render("alerts.yml.j2", alert_for={"PredictionsStale": "0s"}))
    (group,) = [g for g in doc["groups"] if g["name"] == "gept-predictions"]
    group["name"] = FAST_GROUP
    group["rules"] = [r for r in group["rules"] if r["alert"] == "PredictionsStale"]
    # Tells this copy's alerts apart from the production rule's, should that fire as well.
    group["rules"][0]["labels"]["lab_test"] = FAST_GROUP
    return yaml.safe_dump({"groups": [group]}, sort_keys=False)


def _fast_rule_state(lab: LabHandle) -> str:
    """State of the lab copy of PredictionsStale: inactive, pending or firing ("" if absent)."""
    groups = api(lab, "http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    for group in groups:
        if group["name"] == FAST_GROUP:
            return str(group["rules"][0]["state"])
    return ""


def _in_alertmanager(lab: LabHandle) -> bool:
    return any(a["labels"].get("alertname") == "PredictionsStale"
               and a["labels"].get("lab_test") == FAST_GROUP
               for a in api(lab, "http://127.0.0.1:9093/api/v2/alerts"))


def test_stale_predictions_fire_the_alert_and_reach_alertmanager(converged: LabHandle) -> None:
    converged.sh("ampere", f"cat > {FAST_RULES} <<'EOF'\n{_fast_predictions_rule()}EOF")
    try:
        api(converged, "http://127.0.0.1:9090/-/reload", method="POST")
        wait_for("the lab copy of PredictionsStale to load",
                 lambda: _fast_rule_state(converged) != "", timeout=60)
        # With fresh predictions the rule (for: 0s) is quiet. A batch is 320-620 s old in
        # normal operation (its time is the block's start), so wait for the fresh part.
        wait_for("the rule to be inactive on fresh predictions",
                 lambda: _age(converged) < 540 and _fast_rule_state(converged) == "inactive",
                 timeout=660, interval=5)
        with predictions_stale(converged):
            wait_for("PredictionsStale to fire in Prometheus",
                     lambda: _fast_rule_state(converged) == "firing", timeout=120)
            wait_for("PredictionsStale to reach Alertmanager",
                     lambda: _in_alertmanager(converged), timeout=90)
            assert _age(converged) > 600
    finally:
        converged.run("ampere", f"rm -f {FAST_RULES}")
        api(converged, "http://127.0.0.1:9090/-/reload", method="POST")
