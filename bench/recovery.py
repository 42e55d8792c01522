"""Benchmark: how much data a lost disk takes with it, and how long until PostgreSQL serves.

On a converged lab with predictions (its own prefix ``grec-`` and ports unless
``GEPT_LAB_PREFIX`` says otherwise, converged and given the demo's workload: history, a
model, a batch; ``GEPT_BENCH_REUSE_LAB=1`` uses a running lab after ``make demo`` as it is):

1. **Standby lag** (:func:`measure_lag`): the replay lag of ``ampere-standby`` sampled under
   the same collector-shaped write load, p99.
2. **Switchover** (:func:`measure_switchover`): the engine under wrk while the primary role
   moves to the standby and back; failed requests counted.
3. **RPO / RTO** (:func:`measure_rpo_rto`, destructive, so last): a writer on Ampere commits
   collector-shaped batches (100 rows of a 5-minute block) every 200 ms and reports each
   commit; the postmaster is killed with SIGKILL and its data directory removed; the cluster
   is restored from the repository on hydra (pgBackRest, latest point) and started. RPO is
   the time between the last restored commit and the last acknowledged one; RTO the time
   from the kill to a cluster that takes writes again. The baseline of the ratio is the
   write load itself: rows lost are also given against rows acknowledged.

Targets: RPO ≤ 60 s, lag p99 ≤ 5 s, 0 failed requests in a switchover. The last line reads:
``recovery: RPO <s> s, RTO <s> s for <rows> rows; standby lag p99 <s> s; switchover <n>
failed requests of <m>``.

Example:
    $ .venv/bin/python bench/recovery.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Its own lab unless the caller names one (set before gept.lab reads them, in main()).
OWN_LAB = {"GEPT_LAB_PREFIX": "grec-", "GEPT_LAB_PORT_OFFSET": "1500"}

WRITE_SECONDS = 45.0   # more than one archive_timeout (30 s) of writes before the kill
TABLE = "bench_recovery_5min"
PY = "/opt/recommendation-engine/current/venv/bin/python"

# Runs on Ampere as postgres: one transaction per 5-minute block of 100 items, like the
# 5m collector's write; prints "<block> <unix time>" once each commit returned.
WRITER = f"""
import sys, time, psycopg
conn = psycopg.connect("dbname=osrs_data", autocommit=True)
conn.execute("CREATE TABLE IF NOT EXISTS {TABLE} (LIKE price_data_5min INCLUDING DEFAULTS)")
conn.execute("ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {TABLE}_pkey")
conn.execute("ALTER TABLE {TABLE} ADD PRIMARY KEY (item_id, \\"timestamp\\")")
block = 0
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline:
    block += 1
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO {TABLE} VALUES (%s, to_timestamp(%s), %s, %s, %s, %s)",
                [(item, 1_700_000_000 + block * 300, 1000 + item, 5, 990 + item, 7)
                 for item in range(100)])
    print(block, time.time(), flush=True)
    time.sleep(0.2)
"""


@dataclass
class Writes:
    """What the writer reported: block -> the controller's time the commit was seen."""

    acked: dict[int, float]

    @property
    def last(self) -> int:
        return max(self.acked) if self.acked else 0


def _writer(lab: Any, seconds: float) -> tuple[subprocess.Popen[str], Writes, threading.Thread]:
    # The program travels on stdin (python reads it to EOF, then runs it): no quoting.
    cmd = f"cd / && runuser -u postgres -- {PY} -I - {seconds}"
    proc = subprocess.Popen([*lab.ssh_argv("ampere"), cmd], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None
    proc.stdin.write(WRITER)
    proc.stdin.close()
    writes = Writes({})

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit():
                writes.acked[int(parts[0])] = float(parts[1])

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return proc, writes, thread


def _sql(lab: Any, sql: str, timeout: float = 120) -> str:
    quoted = sql.replace("'", "'\"'\"'")
    proc = lab.run("ampere", "cd / && runuser -u postgres -- psql -XAtq -d osrs_data "
                             f"-c '{quoted}'", timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed: {proc.stderr.strip()[-400:]}")
    return str(proc.stdout).strip()


def measure_rpo_rto(lab: Any) -> dict[str, float]:
    """Kill the primary and lose its disk mid-write; restore from the repository."""
    _sql(lab, f"DROP TABLE IF EXISTS {TABLE}")
    proc, writes, thread = _writer(lab, WRITE_SECONDS + 60)
    time.sleep(WRITE_SECONDS)
    kill = ("kill -9 $(head -1 /var/lib/postgresql/15/main/postmaster.pid) && "
            "rm -rf /var/lib/postgresql/15/main")
    killed_at = time.time()
    lab.run("ampere", kill, timeout=60)
    proc.wait(timeout=120)
    thread.join(timeout=10)
    last_acked = writes.last
    restore = lab.run("ampere", f"cd / && {PY} -I -c 'import json; from gept.db.backups import "
                                "BackupFacts, restore_live; "
                                "print(json.dumps(restore_live(BackupFacts.load())))'",
                      timeout=3600)
    if restore.returncode != 0:
        raise RuntimeError(f"restore failed: {restore.stderr.strip()[-2000:]}")
    serving_at = time.time()
    restored = int(_sql(lab, f"SELECT coalesce(max((extract(epoch FROM \"timestamp\")::bigint "
                             f"- 1700000000) / 300), 0) FROM {TABLE}") or 0)
    rows = int(_sql(lab, f"SELECT count(*) FROM {TABLE}"))
    # Owned by postgres: left behind, it would stop the next converge's grants.
    _sql(lab, f"DROP TABLE {TABLE}")
    lost_blocks = last_acked - restored
    if not writes.acked:
        raise RuntimeError("the writer acknowledged no commit before the kill")
    # Lost time: from the last commit that survived to the last one acknowledged.
    survived = writes.acked.get(restored, min(writes.acked.values()))
    rpo = writes.acked[last_acked] - survived
    print(f"writer: {last_acked} blocks acknowledged, {restored} restored, "
          f"{lost_blocks} lost ({lost_blocks * 100} of {last_acked * 100} rows)", flush=True)
    print(f"RPO {rpo:.1f} s = {rpo / 30:.2f}x archive_timeout (30 s); "
          f"{lost_blocks / max(last_acked, 1):.3f}x of the acknowledged writes lost", flush=True)
    return {"rpo": max(rpo, 0.0), "rto": serving_at - killed_at, "rows": float(rows)}


LAG_SECONDS = 40.0
# Runs on Ampere as postgres: the standby's replay_lag (pg_stat_replication) every 250 ms;
# "-1" while no standby is connected.
LAG_SAMPLER = """
import sys, time, psycopg
conn = psycopg.connect("dbname=postgres", autocommit=True)
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline:
    row = conn.execute("SELECT coalesce(extract(epoch FROM replay_lag), 0) "
                       "FROM pg_stat_replication WHERE application_name = %s",
                       (sys.argv[2],)).fetchone()
    print(-1 if row is None else float(row[0]), flush=True)
    time.sleep(0.25)
"""


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def measure_lag(lab: Any) -> float | None:
    """The standby's replay lag p99 under the write load (None: no standby measured).

    The collector-shaped writer of :func:`measure_rpo_rto` runs on Ampere for
    ``LAG_SECONDS`` while the primary's ``pg_stat_replication.replay_lag`` of
    ``ampere-standby`` (the time from a WAL flush on the primary to the standby's report that
    it replayed it) is sampled every 250 ms.
    """
    from gept.db.replication import slot_name

    _sql(lab, f"DROP TABLE IF EXISTS {TABLE}")
    writer, writes, thread = _writer(lab, LAG_SECONDS)
    cmd = (f"cd / && runuser -u postgres -- {PY} -I - {LAG_SECONDS} "
           f"{slot_name('ampere-standby')}")
    sampler = subprocess.run([*lab.ssh_argv("ampere"), cmd], input=LAG_SAMPLER,
                             capture_output=True, text=True, timeout=LAG_SECONDS + 120,
                             check=False)
    writer.wait(timeout=120)
    thread.join(timeout=10)
    # Not an osrs_user table: the deploys' grants step would refuse to converge it.
    _sql(lab, f"DROP TABLE IF EXISTS {TABLE}")
    samples: list[float] = []
    for word in sampler.stdout.split():
        try:
            samples.append(float(word))
        except ValueError:
            continue
    streaming = [v for v in samples if v >= 0]
    if not streaming:
        print(f"standby lag: no standby streaming ({sampler.stderr.strip()[-300:]})",
              flush=True)
        return None
    p50, p99 = _percentile(streaming, 50), _percentile(streaming, 99)
    print(f"standby lag under {len(writes.acked) * 100} rows in {LAG_SECONDS:.0f} s: "
          f"p50 {p50:.3f} s, p99 {p99:.3f} s, max {max(streaming):.3f} s over "
          f"{len(streaming)} samples ({len(samples) - len(streaming)} without a standby); "
          f"p99 = {p99 / 5:.2f}x the 5 s target", flush=True)
    return p99


def _gept(*args: str, timeout: float = 1800) -> tuple[int, dict[str, Any]]:
    import json

    proc = subprocess.run([sys.executable, "-m", "gept.cli", *args, "--json"], cwd=REPO,
                          env=dict(os.environ), capture_output=True, text=True,
                          timeout=timeout, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        return proc.returncode, json.loads(lines[-1]) if lines else {}
    except ValueError:
        return proc.returncode, {"error": proc.stdout[-2000:] + proc.stderr[-2000:]}


def _wrk_counts(text: str) -> tuple[int, int]:
    """``(failed, total)`` from wrk's report: non-2xx/3xx answers and socket errors."""
    import re

    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    failed = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        failed += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     text)
    if sock:
        failed += sum(int(g) for g in sock.groups())
    return failed, total


def measure_switchover(lab: Any) -> tuple[int, int] | None:
    """``(failed, total)`` engine requests under wrk during a switchover and back.

    The person plans and approves the ``switchover`` runbook (its two zones), then runs it
    while wrk (4 connections) asks the engine for recommendations over its TLS port for the
    whole run; every non-2xx answer and socket error counts as failed. A baseline wrk run
    of the same length before the switchover gives the ratio.
    """
    import json
    import tempfile

    from gept.lab import workload
    from gept.lab.topology import LabTopology

    inventory = str(REPO / "inventory" / "lab.py")
    code, plan = _gept("runbook", "plan", "switchover", "--inventory", inventory)
    if code != 0:
        print(f"switchover: plan failed: {plan}", flush=True)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(plan))
        key = LabTopology.from_env().state_dir / "approver_ed25519"
        code, signed = _gept("coordinate", "approve", "--plan", str(path), "--reason",
                             "bench/recovery.py switchover", "--ttl", "30m", "--key",
                             str(key))
    if code != 0:
        print(f"switchover: approval failed: {signed}", flush=True)
        return None
    approvals = [a["approval"] for a in signed["approvals"]]
    url = (f"{workload.engine_url()}/api/v1/recommendations"
           "?style=active&capital=50000000&risk=medium&slots=4")
    # 4 connections, each pausing 500 ms between requests: 8 requests/s, under the
    # engine's per-key limit (600/min), so a 429 can only mean the limiter, never load.
    script = Path(tempfile.mkdtemp()) / "paced.lua"
    script.write_text(f'wrk.headers["X-API-Key"] = "{workload.api_key()}"\n'
                      "function delay() return 500 end\n")

    def wrk(seconds: float) -> subprocess.Popen[str]:
        return subprocess.Popen(["wrk", "-t1", "-c4", f"-d{int(seconds)}s", "--timeout", "10s",
                                 "-s", str(script), url], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    base = wrk(20)
    base_out, _ = base.communicate(timeout=120)
    base_failed, base_total = _wrk_counts(base_out)
    if base_failed:
        # Failures before any switchover are the lab's, not the switchover's: say so.
        print(f"switchover: the baseline already fails {base_failed} of {base_total} "
              "(no predictions? engine down?)", flush=True)
    started = time.monotonic()
    load = wrk(900)  # longer than the switchover; stopped when it is done
    time.sleep(2)
    args: list[str] = []
    for approval in approvals:
        args += ["--approval", approval]
    code, result = _gept("runbook", "run", "switchover", "--inventory", inventory, *args)
    took = time.monotonic() - started
    time.sleep(5)  # requests right after the switchover count too
    load.send_signal(2)  # SIGINT: wrk prints its report for the time it ran
    out, _ = load.communicate(timeout=60)
    if code != 0:
        print(f"switchover: the runbook failed (exit {code}): {json.dumps(result)[-2000:]}",
              flush=True)
    failed, total = _wrk_counts(out)
    if failed:
        # Which kind: the engine's answers (non-2xx) or the connection (socket errors).
        print("switchover: wrk says " + "; ".join(
            line.strip() for line in out.splitlines()
            if "Non-2xx" in line or "Socket errors" in line), flush=True)
    print(f"switchover (there and back) in {took:.0f} s: {failed} failed of {total} requests "
          f"under wrk; baseline {base_failed} failed of {base_total} in 20 s "
          f"({total / max(took + 5, 1):.0f} vs {base_total / 20:.0f} requests/s, "
          f"{(total / max(took + 5, 1)) / max(base_total / 20, 1):.2f}x)", flush=True)
    return (failed, total) if code == 0 else (max(failed, 1), total)


BENCH_DAYS = 3


def _predictions(days: int) -> None:
    """History, a promoted model and one batch, as the demo makes them: without predictions
    the engine answers 503 and the switchover would count nothing but failures."""
    from gept.lab import workload

    shell = workload.LabShell()
    workload.start_simulator(shell)
    workload.seed_history(shell, days)
    workload.train_and_promote(shell, days)
    workload.infer(shell)
    print(f"workload: {days} days of history, a model trained and promoted, one batch",
          flush=True)


def main() -> int:
    """Run the benchmark; exit 1 when a step fails."""
    for name, value in OWN_LAB.items():
        os.environ.setdefault(name, value)
    from gept import convergence
    from gept.lab.lab import Lab

    lab = Lab.from_env()
    reuse = os.environ.get("GEPT_BENCH_REUSE_LAB") == "1"
    if not reuse:
        from deploys.release import current_release

        os.environ["GEPT_RELEASE_PIN"] = current_release().version
        lab.down()
        lab.up()
        first = convergence.converge(timeout=2400)
        if first.returncode != 0:
            print(f"converge failed: {first.stderr[-3000:]}", file=sys.stderr)
            return 1
        _predictions(BENCH_DAYS)
    try:
        lag = measure_lag(lab)
        switch = measure_switchover(lab)
        figures = measure_rpo_rto(lab)
    finally:
        if not reuse and os.environ.get("GEPT_BENCH_KEEP_LAB") != "1":
            lab.down()
    lag_text = f"{lag:.2f}" if lag is not None else "n/a"
    switch_text = (f"{switch[0]} failed requests of {switch[1]}" if switch is not None
                   else "n/a failed requests of 0")
    print("targets: RPO <= 60 s, lag p99 <= 5 s, 0 failed requests")
    print(f"recovery: RPO {figures['rpo']:.1f} s, RTO {figures['rto']:.1f} s for "
          f"{figures['rows']:.0f} rows; standby lag p99 {lag_text} s; switchover {switch_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
