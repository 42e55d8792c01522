"""`gept check` against the converged lab: it passes, and it names host and check when
something is broken (engine stopped, a collector stopped, predictions stale).

Needs the deploys' ``converged_lab`` fixture (both hosts converged by deploys/ampere.py and
deploys/hydra.py, with a trained model and inference running).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from breakage import (
    check_json,
    collector_stopped,
    engine_stopped,
    gept_check,
    predictions_stale,
    psql,
    wait_for,
)

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle


def _failed(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["host"], f["check"]) for f in report["failures"]]


def _prometheus_has_scraped_everything(lab: LabHandle) -> bool:
    out = lab.run("ampere", "curl -fsS -m 5 http://127.0.0.1:9090/api/v1/targets").stdout
    try:
        found = json.loads(out)["data"]["activeTargets"]
    except (ValueError, KeyError):
        return False
    return bool(found) and all(t["health"] != "unknown" for t in found)


def _batch_age(lab: LabHandle) -> float:
    out = psql(lab, 'SELECT COALESCE(extract(epoch FROM now() - max("time")), 1e9) '
                    "FROM prediction_batches").strip()
    return float(out or 1e9)


def test_check_passes_on_the_converged_lab(converged: LabHandle) -> None:
    # Right after a converge Prometheus may not have scraped yet ("unknown" is not "up").
    wait_for("Prometheus to scrape every target once",
             lambda: _prometheus_has_scraped_everything(converged), timeout=120)
    # A batch's time is its 5-minute block's start and it lands ~5 min 20 s later, so in
    # normal operation the newest batch is 320-620 s old and crosses 600 s for a few
    # seconds per cycle. Start in the part of the cycle that leaves the ~30 s run a margin
    # (right after the converge the cycle needs up to two ticks to settle).
    wait_for("the newest predictions batch to be younger than 540 s",
             lambda: _batch_age(converged) < 540, timeout=660, interval=5)
    code, report = check_json()
    assert report["summary"]["passed"] > 30
    assert code == 0, f"checks failed on a converged lab: {report['failures']}"
    # Every lab host is checked, the standby included (its replication and drill checks).
    assert {c["host"] for c in report["checks"]} == {"ampere", "ampere-standby", "hydra"}


def test_stopped_engine_fails_the_engine_checks_by_name(converged: LabHandle) -> None:
    with engine_stopped(converged):
        proc = gept_check("--host", "ampere")
    assert proc.returncode == 1
    out = proc.stdout
    assert "ampere: " in out
    assert "FAILED" in out
    assert "FAIL The recommendation engine unit is active" in out
    assert "recommendation-engine.service is not running" in out
    assert "FAIL The engine's health endpoint answers" in out
    # Everything unrelated still passes: the report points at the engine, not at everything.
    assert "ok   PostgreSQL is running" in out


def test_stopped_collector_fails_that_collectors_checks(converged: LabHandle) -> None:
    with collector_stopped(converged, "news") as container:
        code, report = check_json("--host", "ampere", "-k",
                                  "collector_container or configured_interval")
    assert code == 1
    failed = _failed(report)
    assert ("ampere", "The collector's container is running [news]") in failed
    assert ("ampere", "The collector exports the interval the inventory configures [news]") \
        in failed
    assert all("[news]" in check for _host, check in failed), failed
    message = next(f["message"] for f in report["failures"]
                   if f["check"] == "The collector's container is running [news]")
    assert container in message
    assert "exited" in message


def test_stale_predictions_fail_the_freshness_check(converged: LabHandle) -> None:
    with predictions_stale(converged):
        code, report = check_json("--host", "ampere", "-k", "predictions_fresh or health")
    assert code == 1
    (failure,) = report["failures"]
    assert failure["host"] == "ampere"
    assert failure["check"].startswith("The newest predictions batch is fresher")
    assert "s old (> 600 s)" in failure["message"]


def test_hydra_alone_and_unknown_hosts(converged: LabHandle) -> None:
    code, report = check_json("--host", "hydra")
    assert code == 0, report["failures"]
    assert {c["host"] for c in report["checks"]} == {"hydra"}
    proc = gept_check("--host", "nosuchhost")
    assert proc.returncode == 2
    assert "unknown host or group 'nosuchhost'" in proc.stderr
