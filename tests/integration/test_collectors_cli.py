"""`gept collect ...` as an operator runs it: subprocess loop + SIGTERM, gaps, backfill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from gept.cli import app
from gept.core.config import get_settings
from gept.market.simulator import SimulatorServer
from gept.testing.pgserver import free_port

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
GEPT = str(Path(sys.executable).with_name("gept"))
CONTRACT = ("gept_collector_runs_total", "gept_collector_failures_total",
            "gept_collector_rows_written_total", "gept_collector_last_success_timestamp_seconds",
            "gept_collector_interval_seconds")


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    with SimulatorServer(items=200, seed=3) as server:
        server.clock.set(T0.timestamp() + 300 + 20)
        monkeypatch.setenv("GEPT_WIKI_BASE_URL", server.url)
        monkeypatch.setenv("GEPT_WIKI_RETRIES", "2")
        get_settings.cache_clear()
        yield server


def test_loop_serves_contract_metrics_and_stops_cleanly_on_sigterm(
        db_dsn: str, sim: SimulatorServer) -> None:
    port = free_port()
    env = {**os.environ, "GEPT_DATABASE_URL": db_dsn, "GEPT_WIKI_BASE_URL": sim.url,
           "GEPT_METRICS_PORT": str(port)}
    proc = subprocess.Popen([GEPT, "collect", "latest", "--max-seconds", "120"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                if 'gept_collector_runs_total{collector="latest"} 1.0' in text:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        for name in CONTRACT:
            assert f'{name}{{collector="latest"}}' in text, name
        assert 'gept_collector_interval_seconds{collector="latest"} 60.0' in text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"latest: 1 runs, 0 failed" in out
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT status, rows_written FROM collector_runs").fetchall()
    assert rows == [("ok", len(sim.market.latest(T0 + timedelta(seconds=320))))]


def test_once_gaps_and_repair_from_the_command_line(db_dsn: str, sim: SimulatorServer) -> None:
    cli = CliRunner()
    first = cli.invoke(app, ["collect", "5m", "--once", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rows_written"] == len(sim.market.block(T0).rows)
    sim.clock.advance(900)
    later = cli.invoke(app, ["collect", "5m", "--once", "--no-auto-backfill", "--json"])
    assert later.exit_code == 0, later.output

    window = ["--since", T0.isoformat(), "--until", (T0 + timedelta(hours=1)).isoformat()]
    listed = cli.invoke(app, ["collect", "gaps", "--table", "5m", "--json", *window])
    assert listed.exit_code == 1                      # unresolved gaps: exit 1
    (gap,) = json.loads(listed.stdout)["gaps"]
    assert (gap["gap_start"], gap["blocks"], gap["status"]) == (
        (T0 + timedelta(minutes=5)).isoformat(), 2, "DETECTED")

    repaired = cli.invoke(app, ["collect", "gaps", "--repair", "--pause", "0", "--json",
                                *window])
    assert repaired.exit_code == 0, repaired.output
    body = json.loads(repaired.stdout)
    assert body["gaps"] == []
    assert body["repaired"][0]["rows_written"] == sum(  # the two lost blocks' traded rows
        len(sim.market.block(T0 + timedelta(minutes=m)).rows) for m in (5, 10))
    with psycopg.connect(db_dsn) as conn:
        blocks = conn.execute('SELECT count(DISTINCT "timestamp") FROM price_data_5min'
                              ).fetchone()
    assert blocks == (4,)

    again = cli.invoke(app, ["collect", "backfill", "--since", T0.isoformat(), "--until",
                             (T0 + timedelta(minutes=20)).isoformat(), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["rows_written"] == 0


def test_bad_backfill_range_is_invalid_input_naming_the_field(db_dsn: str) -> None:
    result = subprocess.run([GEPT, "collect", "backfill", "--since", "yesterday", "--until",
                             "2026-01-01", "--json"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "GEPT_DATABASE_URL": db_dsn})
    assert result.returncode == 2
    assert json.loads(result.stdout)["field"] == "since"
