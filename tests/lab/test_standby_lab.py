"""The streaming standby on the lab: ampere-standby replicates ampere over TLS, and
``promote-standby`` fails over to it — refused without a person's approval, and with one the
engine answers from the new primary, Hydra's inference writes the next batch there, and no
batch is lost or doubled.

The failover test leaves the lab as it found it (the person restores it at the end: the
deploys re-seed ampere as a standby of ampere-standby, then the gate's own switchover
functions move the primary role back), so the lab tests after it see ampere as primary.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from breakage import engine_healthy

from gept import convergence
from gept.lab.topology import LabTopology

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

pytestmark = pytest.mark.timeout(2400)
STANDBY = "ampere-standby"
REPO = Path(__file__).resolve().parents[2]


def gept_json(*args: str, timeout: float = 1500) -> tuple[int, dict[str, Any]]:
    """``gept <args> --json`` on the controller as the person (root), this lab's prefix."""
    proc = subprocess.run([sys.executable, "-m", "gept.cli", *args, "--json"], cwd=REPO,
                          env=dict(os.environ), capture_output=True, text=True,
                          timeout=timeout, check=False)
    try:
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail(f"no JSON from `gept {' '.join(args)}` (exit {proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def runbook(*args: str, timeout: float = 1500) -> tuple[int, dict[str, Any]]:
    """A runbook of the pinned catalogue on this lab's inventory."""
    return gept_json("runbook", *args, "--inventory", str(REPO / "inventory" / "lab.py"),
                     timeout=timeout)


def approve(plan: dict[str, Any], tmp: Path) -> list[str]:
    """The person signs every approval the plan needs with this lab's approver key."""
    path = tmp / f"plan-{plan['plan_hash'][:12]}.json"
    path.write_text(json.dumps(plan))
    key = LabTopology.from_env().state_dir / "approver_ed25519"
    code, out = gept_json("coordinate", "approve", "--plan", str(path), "--reason",
                          "lab standby test", "--ttl", "30m", "--key", str(key), timeout=120)
    assert code == 0, out
    return [str(a["approval"]) for a in out["approvals"]]


def pg(lab: LabHandle, host: str, sql: str, database: str = "osrs_data") -> str:
    """SQL as the postgres superuser on ``host`` (the test's own eyes, never the agent's)."""
    return lab.sh(host, "cd / && runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 "
                        f"-d {database} -c {shlex.quote(sql)}").strip()


def wait(what: str, probe: Any, timeout: float = 120.0, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except Exception as exc:  # a probe failing is "not yet"
            last = exc
        time.sleep(interval)
    pytest.fail(f"{what} within {timeout:.0f} s (last: {last!r})", pytrace=False)


def batches(lab: LabHandle, host: str) -> list[str]:
    out = pg(lab, host, "SELECT \"time\" FROM prediction_batches ORDER BY 1")
    return [line for line in out.splitlines() if line]


def test_standby_streams_from_ampere_over_tls(converged: LabHandle) -> None:
    assert pg(converged, STANDBY, "SELECT pg_is_in_recovery()") == "t"
    row = pg(converged, "ampere", "SELECT r.application_name, r.state, l.ssl FROM "
                                  "pg_stat_replication r JOIN pg_stat_ssl l USING (pid)")
    assert row == "gept_ampere_standby|streaming|t", row
    # A write on ampere is readable on the standby within seconds.
    marker = f"standby-{time.time_ns()}"
    pg(converged, "ampere", "CREATE TABLE IF NOT EXISTS gept_standby_probe (v text); "
                            f"INSERT INTO gept_standby_probe VALUES ('{marker}')", "postgres")
    wait("the write replayed on the standby", lambda: marker in pg(
        converged, STANDBY, "SELECT v FROM gept_standby_probe", "postgres"), timeout=30,
        interval=0.5)
    # Read-only there, for everyone: no second primary.
    proc = converged.run(STANDBY, "cd / && runuser -u postgres -- psql -X -d postgres -c "
                                  "'CREATE TABLE gept_nope (v int)'")
    assert proc.returncode != 0
    assert "read-only" in proc.stderr


def _restore_ampere_as_primary(lab: LabHandle) -> None:
    """The person's way back: re-seed ampere from the promoted standby (the deploys, with
    db_primary naming the standby), then the switchover functions, as root, move the
    primary role back to ampere; a converge with the inventory's db_primary then agrees."""
    result = convergence.converge(extra_args=("--data", f"db_primary={STANDBY}"))
    assert result.returncode == 0, result.stderr[-3000:]
    standby_python = "/opt/gept/app/current/venv/bin/python"
    wait("ampere streams from the promoted standby", lambda: pg(
        lab, "ampere", "SELECT status FROM pg_stat_wal_receiver", "postgres") == "streaming",
        timeout=180)
    lab.sh(STANDBY, f"{standby_python} -c 'from gept.gate.standby import demote_primary; "
                    "print(demote_primary(None, {\"peer\": \"ampere\"}))'", timeout=600)
    lab.sh("ampere", "/opt/recommendation-engine/current/venv/bin/python -c 'from "
                     "gept.gate.standby import promote_standby; print(promote_standby(None, {}))'",
           timeout=600)
    wait("ampere is the primary again", lambda: pg(
        lab, "ampere", "SELECT pg_is_in_recovery()", "postgres") == "f", timeout=120)
    wait("the standby streams from ampere again", lambda: pg(
        lab, STANDBY, "SELECT status FROM pg_stat_wal_receiver", "postgres") == "streaming",
        timeout=180)
    again = convergence.converge()
    assert again.returncode == 0, again.stderr[-3000:]


def test_promote_standby_needs_an_approval_then_everything_follows(
        converged: LabHandle, tmp_path: Path) -> None:
    lab = converged
    before = batches(lab, "ampere")
    assert before, "the converged lab has no predictions batch"
    wait("the standby has replayed every batch", lambda: batches(lab, STANDBY) == before,
         timeout=60)

    # Refused without a person's approval: nothing fenced, nothing promoted.
    code, refused = runbook("run", "promote-standby")
    assert code == 3, refused
    assert refused["zone"] == "promote-standby"
    assert sorted(refused["hosts"]) == ["lab/ampere", f"lab/{STANDBY}"]
    assert pg(lab, "ampere", "SELECT pg_is_in_recovery()") == "f"
    assert pg(lab, STANDBY, "SELECT pg_is_in_recovery()") == "t"

    code, plan = runbook("plan", "promote-standby")
    assert code == 0, plan
    assert plan["plan_hash"] == refused["plan_hash"]
    approvals = approve(plan, tmp_path)
    assert len(approvals) == 1
    try:
        code, result = runbook("run", "promote-standby", "--approval", approvals[0])
        assert code == 0, json.dumps(result)[-3000:]
        assert all(v["ok"] for v in result["verification"]), result["verification"]

        # The old primary is fenced; the standby accepts writes.
        assert lab.sh("ampere", "systemctl is-enabled postgresql@15-main.service || true"
                      ).strip() == "masked"
        assert pg(lab, STANDBY, "SELECT pg_is_in_recovery()") == "f"
        # The engine answers, from the new primary (its pool reconnected there).
        wait("the engine answers", lambda: engine_healthy(lab), timeout=120)
        wait("the engine's connections are on the new primary", lambda: int(pg(
            lab, STANDBY, "SELECT count(*) FROM pg_stat_activity "
                          "WHERE application_name = 'gept-engine'")) > 0, timeout=120)
        # Hydra's primary inference (its cron, through the tunnel to the standby) writes
        # the next batch there; every batch before is there once, none doubled.
        last = before[-1]
        after = wait("inference writes the next batch on the new primary", lambda: (
            lambda b: b if b and b[-1] > last else None)(batches(lab, STANDBY)),
            timeout=480, interval=10)
        assert after[:len(before)] == before, "a batch was lost in the failover"
        assert len(after) == len(set(after)), "a batch was written twice"
        writer = pg(lab, STANDBY, "SELECT role FROM inference_runs ORDER BY id DESC LIMIT 1")
        assert writer in ("primary", "fallback"), writer
        # The deploys refuse both hosts until db_primary names the promoted one.
        refused_deploy = convergence.converge()
        assert refused_deploy.returncode == 3, refused_deploy.stderr[-2000:]
        assert "gept-standby: refused" in refused_deploy.stderr
    finally:
        _restore_ampere_as_primary(lab)
    assert pg(lab, "ampere", "SELECT pg_is_in_recovery()") == "f"
    assert engine_healthy(lab)


def test_switchover_there_and_back_keeps_every_write(converged: LabHandle,
                                                     tmp_path: Path) -> None:
    lab = converged

    def timeline(host: str) -> int:  # of the WAL the primary writes now
        return int(pg(lab, host, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)",
                      "postgres"), 16)

    before = timeline("ampere")
    code, refused = runbook("run", "switchover")
    assert code == 3, refused   # two zones, no approval: nothing stopped
    code, plan = runbook("plan", "switchover")
    assert code == 0, plan
    approvals = approve(plan, tmp_path)
    assert len(approvals) == 2  # restart-postgres and promote-standby
    args = [a for approval in approvals for a in ("--approval", approval)]
    code, result = runbook("run", "switchover", *args)
    assert code == 0, json.dumps(result)[-3000:]
    assert all(v["ok"] for v in result["verification"]), result["verification"]
    # Ends where it began, two promotions later, and still streams both ways of a write.
    assert pg(lab, "ampere", "SELECT pg_is_in_recovery()") == "f"
    assert pg(lab, STANDBY, "SELECT pg_is_in_recovery()") == "t"
    assert timeline("ampere") == before + 2
    marker = f"switchover-{time.time_ns()}"
    pg(lab, "ampere", "CREATE TABLE IF NOT EXISTS gept_standby_probe (v text); "
                      f"INSERT INTO gept_standby_probe VALUES ('{marker}')", "postgres")
    wait("the write replayed on the standby", lambda: marker in pg(
        lab, STANDBY, "SELECT v FROM gept_standby_probe", "postgres"), timeout=30,
        interval=0.5)
    assert engine_healthy(lab)
