"""Reversible breakage on a converged lab, shared by the checks and monitoring lab tests.

Each context manager breaks one thing, yields, and restores it — also when the test fails —
then waits until the lab is healthy again, so the next test starts from a converged lab.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

REPO = Path(__file__).resolve().parents[2]
GEPT = [sys.executable, "-m", "gept.cli"]
STATE_DIR = "/var/lib/gept/state"
HOLD_UNIT = "gept-labtest-hold-inference"
STASH = "gept_labtest_stash"
SYNTHETIC_RUN = "labtest-stale-predictions"


def gept_check(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI: ``gept check --inventory inventory/lab.py ...``."""
    return subprocess.run([*GEPT, "check", "--inventory", "inventory/lab.py", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def check_json(*args: str) -> tuple[int, dict[str, Any]]:
    """``gept check --json``: exit code and the parsed report."""
    proc = gept_check(*args, "--json")
    try:
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail(f"gept check --json printed no JSON (exit {proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def wait_for(what: str, probe: Any, timeout: float = 120.0, interval: float = 2.0) -> None:
    """Poll ``probe()`` until truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def psql(lab: LabHandle, sql: str) -> str:
    """Run SQL on Ampere as the postgres superuser (test setup, not a check)."""
    quoted = sql.replace("'", "'\"'\"'")
    return lab.sh("ampere", f"runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 "
                            f"-d osrs_data -c '{quoted}'")


def engine_healthy(lab: LabHandle) -> bool:
    out = lab.run("ampere", "curl -fsS -m 5 http://127.0.0.1:8000/api/v1/health").stdout
    try:
        return json.loads(out).get("status") in ("ok", "degraded")
    except ValueError:
        return False


@contextlib.contextmanager
def engine_stopped(lab: LabHandle) -> Iterator[None]:
    """The recommendation engine stopped (a safe operation), restarted afterwards."""
    lab.sh("ampere", "systemctl stop recommendation-engine")
    try:
        yield
    finally:
        lab.sh("ampere", "systemctl start recommendation-engine")
        wait_for("the engine to answer /api/v1/health again", lambda: engine_healthy(lab))


def collector_container(lab: LabHandle, collector: str) -> str:
    """The container name of a collector's compose service."""
    out = lab.sh("ampere", "docker ps -a --filter label=com.docker.compose.service="
                           f"collector-{collector} --format '{{{{.Names}}}}'").split()
    assert out, f"no container for compose service collector-{collector}"
    return out[0]


@contextlib.contextmanager
def collector_stopped(lab: LabHandle, collector: str) -> Iterator[str]:
    """One collector's container stopped; started again afterwards."""
    name = collector_container(lab, collector)
    lab.sh("ampere", f"docker stop -t 20 {name}")
    try:
        yield name
    finally:
        lab.sh("ampere", f"docker start {name}")
        wait_for(f"{name} to run again", lambda: lab.run(
            "ampere", f"docker inspect -f '{{{{.State.Running}}}}' {name}").stdout.strip()
            == "true")


@contextlib.contextmanager
def inference_held(lab: LabHandle) -> Iterator[None]:
    """Hold the inference crons' flock on both hosts, so no run writes a batch meanwhile.

    The crons use ``flock -n``: while the lock is held they skip. A run already in progress
    is waited for (bounded by the cron's own 290 s timeout).
    """
    hosts = ("ampere", "hydra")
    try:
        for host in hosts:
            lab.sh(host, f"systemctl stop {HOLD_UNIT} 2>/dev/null; rm -f /run/{HOLD_UNIT}; "
                         f"systemd-run --unit {HOLD_UNIT} --collect flock -w 300 "
                         f"{STATE_DIR}/inference.cron.lock "
                         f"sh -c 'touch /run/{HOLD_UNIT}; exec sleep 900'")
        for host in hosts:
            wait_for(f"the inference lock on {host}", lambda h=host: lab.run(
                h, f"test -e /run/{HOLD_UNIT}").returncode == 0, timeout=320)
        yield
    finally:
        for host in hosts:
            lab.run(host, f"systemctl stop {HOLD_UNIT}; rm -f /run/{HOLD_UNIT}")


@contextlib.contextmanager
def predictions_stale(lab: LabHandle) -> Iterator[None]:
    """The newest predictions batch is an hour old.

    With inference held, the batches of the last hour move to a stash table and a synthetic
    (empty) batch one hour old becomes the newest. The engine notices within a second and
    serves it, so its freshness, the check and the alert all see stale predictions.
    Afterwards the synthetic batch goes and the stashed batches come back.
    """
    with inference_held(lab):
        psql(lab, f"DROP TABLE IF EXISTS {STASH}; "
                  f"CREATE TABLE {STASH} AS SELECT * FROM prediction_batches "
                  "WHERE \"time\" > now() - interval '1 hour'; "
                  "DELETE FROM prediction_batches WHERE \"time\" > now() - interval '1 hour'; "
                  "INSERT INTO prediction_batches (\"time\", run_id, role, rows_written, items) "
                  f"SELECT date_trunc('minute', now()) - interval '1 hour', '{SYNTHETIC_RUN}', "
                  "'fallback', 0, 0 WHERE NOT EXISTS (SELECT 1 FROM prediction_batches "
                  "WHERE \"time\" >= now() - interval '61 minutes')")
        try:
            yield
        finally:
            psql(lab, f"DELETE FROM prediction_batches WHERE run_id = '{SYNTHETIC_RUN}'; "
                      f"INSERT INTO prediction_batches SELECT * FROM {STASH} "
                      "ON CONFLICT DO NOTHING; "
                      f"DROP TABLE {STASH}")
    # The restored batches aged while inference was held. If the newest is getting old, run
    # Hydra's cron line once now rather than leave the next tests a stale lab for minutes.
    age = psql(lab, "SELECT COALESCE(extract(epoch FROM now() - max(\"time\"))::int, 99999) "
                    "FROM prediction_batches").strip()
    if int(age or 99999) > 420:
        lab.run("hydra", "line=$(grep -m1 'gept infer' /etc/cron.d/gept-inference) && "
                         "runuser -u \"$(echo \"$line\" | awk '{print $6}')\" -- "
                         "sh -c \"$(echo \"$line\" | cut -d' ' -f7-)\"", timeout=330)
