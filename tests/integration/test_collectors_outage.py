"""PostgreSQL dies in the middle of a collector run: no block is lost.

These tests start their own PostgreSQL (not the shared session server) because they kill it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gept.collectors.backfill import backfill
from gept.collectors.metrics import CollectorMetrics
from gept.collectors.runner import CollectorRunner
from gept.db import partitions
from gept.db.migrate import migrate
from gept.market.client import WikiClient
from gept.market.resilience import RetryPolicy
from gept.market.simulator import Fault, SimulatorServer
from gept.testing.pgserver import PgServer

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
UA = "gept-tests/0.1 (ops@example.org)"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PgServer]:
    # Durable commits, as in production: the shared test server trades them for speed, and
    # an immediate shutdown would then lose commits that a real crash would not.
    with PgServer.start(extra_conf={"fsync": "on", "synchronous_commit": "on"}) as server:
        yield server


@pytest.fixture
def dsn(own_pg: PgServer) -> str:
    partitions.forget_cache()
    name = f"outage_{time.monotonic_ns()}"
    target = own_pg.create_database(name)
    with psycopg.connect(target) as conn:
        migrate(conn)
    return target


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(items=300, seed=5) as server:
        server.clock.set(T0.timestamp() + 300 + 20)
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[WikiClient]:
    with WikiClient(sim.url, UA, timeout=5.0, sleep=lambda _s: None,
                    retry=RetryPolicy(attempts=3, base_delay=0.01, jitter=0.0)) as c:
        yield c


def block_counts(dsn: str) -> dict[datetime, int]:
    with psycopg.connect(dsn) as conn:
        return {r[0]: int(r[1]) for r in conn.execute(
            'SELECT "timestamp", count(*) FROM price_data_5min GROUP BY 1 ORDER BY 1')}


def expected_counts(sim: SimulatorServer, *blocks: datetime) -> dict[datetime, int]:
    return {b: len(sim.market.block(b, 300).rows) for b in blocks}


def stored_rows(dsn: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return set(conn.execute(
            'SELECT item_id, "timestamp", avg_high_price, high_price_volume, avg_low_price, '
            "low_price_volume FROM price_data_5min").fetchall())


def test_postgres_killed_mid_run_keeps_the_block_in_memory_and_writes_it_later(
        own_pg: PgServer, dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    metrics = CollectorMetrics("5m")
    runner = CollectorRunner("5m", client, dsn=dsn, metrics=metrics, db_attempts=2,
                             db_delay=0.05)
    assert runner.run_once().status == "ok"                       # T0 stored
    sim.clock.advance(300)
    # The next fetch is slow; PostgreSQL crashes while the collector waits for it.
    sim.faults.push([Fault("slow", delay=1.0)], paths=["/5m"])
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(runner.run_once()))
    worker.start()
    time.sleep(0.3)
    own_pg.stop_server("immediate")
    try:
        worker.join(timeout=60)
        (crashed,) = result
        assert crashed.status == "failed"
        assert "kept in memory" in (crashed.error or "")
        assert len(runner.pending) == 1
        sim.clock.advance(300)
        still_down = runner.run_once()                            # T0+10 fetched, kept
        assert still_down.status == "failed"
        assert len(runner.pending) == 2
    finally:
        own_pg.start_server()
    sim.clock.advance(300)
    back = runner.run_once()                                      # writes 3 blocks, in order
    runner.close()
    assert back.status == "ok"
    assert not runner.pending
    blocks = [T0 + timedelta(minutes=m) for m in (0, 5, 10, 15)]
    assert block_counts(dsn) == expected_counts(sim, *blocks)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM data_quality").fetchone() == (0,)
        late = conn.execute("SELECT count(*) FROM collector_runs WHERE error LIKE "
                            "'%late after a database outage%'").fetchone()
    assert late is not None
    assert late[0] >= 1
    text = metrics.render().decode()
    assert 'gept_collector_failures_total{collector="5m"} 2.0' in text


def test_a_block_lost_with_its_process_is_recorded_as_a_gap_and_backfilled(
        own_pg: PgServer, dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    first = CollectorRunner("5m", client, dsn=dsn, db_attempts=1)
    assert first.run_once().status == "ok"                        # T0
    own_pg.stop_server("immediate")
    try:
        sim.clock.advance(300)
        doomed = CollectorRunner("5m", client, dsn=dsn, db_attempts=2, db_delay=0.05)
        assert doomed.run_once().status == "failed"               # T0+5 fetched ...
    finally:
        own_pg.start_server()
    del doomed                                                    # ... and lost with it
    sim.clock.advance(300)
    restarted = CollectorRunner("5m", client, dsn=dsn, auto_backfill=False)
    run = restarted.run_once()                                    # T0+10
    restarted.close()
    assert run.status == "ok"
    assert "gap recorded" in (run.error or "")
    with psycopg.connect(dsn) as conn:
        gap = conn.execute("SELECT gap_start, gap_end, status FROM data_quality").fetchall()
    lost = T0 + timedelta(minutes=5)
    assert gap == [(lost, lost + timedelta(minutes=5), "DETECTED")]

    report = backfill(dsn, client, "5m", lost, lost + timedelta(minutes=5))
    assert report.ok
    assert report.blocks_written == 1
    blocks = [T0 + timedelta(minutes=m) for m in (0, 5, 10)]
    assert block_counts(dsn) == expected_counts(sim, *blocks)
    want = {(r.item_id, r.timestamp, r.avg_high_price, r.high_price_volume, r.avg_low_price,
             r.low_price_volume) for b in blocks for r in sim.market.block(b, 300).rows}
    assert stored_rows(dsn) == want
    with psycopg.connect(dsn) as conn:
        status = conn.execute("SELECT status, rows_recovered FROM data_quality").fetchone()
    assert status == ("BACKFILLED", len(sim.market.block(lost, 300).rows))
