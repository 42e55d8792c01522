"""Collectors against a real PostgreSQL and the in-process market simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gept.collectors import gaps
from gept.collectors.backfill import backfill
from gept.collectors.metrics import CollectorMetrics
from gept.collectors.runner import CollectorRunner
from gept.core.config import get_settings
from gept.market.client import WikiClient
from gept.market.models import MAX_PRICE, PriceBlock
from gept.market.resilience import RetryPolicy
from gept.market.simulator import SimulatorServer

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
UA = "gept-tests/0.1 (ops@example.org)"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    """A simulator whose clock stands just after block T0 (so /5m answers T0)."""
    with SimulatorServer(items=800, seed=14) as server:
        server.clock.set(T0.timestamp() + 300 + 20)
        monkeypatch.setenv("GEPT_NEWS_FEED_URL", f"{server.url}/news.rss")
        monkeypatch.setenv("GEPT_PLAYERS_URL", f"{server.url}/players")
        get_settings.cache_clear()
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[WikiClient]:
    with WikiClient(sim.url, UA, timeout=1.0, sleep=lambda _s: None,
                    retry=RetryPolicy(attempts=4, base_delay=0.01, jitter=0.0)) as c:
        yield c


def stored(dsn: str, table: str = "price_data_5min") -> set[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return set(conn.execute(
            f'SELECT item_id, "timestamp", avg_high_price, high_price_volume, avg_low_price, '
            f"low_price_volume FROM {table}").fetchall())


def expected(sim: SimulatorServer, *blocks: datetime, step: int = 300) -> set[tuple[Any, ...]]:
    return {(r.item_id, r.timestamp, r.avg_high_price, r.high_price_volume, r.avg_low_price,
             r.low_price_volume) for b in blocks for r in sim.market.block(b, step).rows}


def runs(dsn: str, collector: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT status, rows_written, rows_rejected, block_time, error FROM collector_runs "
            "WHERE collector = %s ORDER BY id", (collector,)).fetchall()


def open_gaps(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT table_name, item_id, gap_start, gap_end, status, rows_recovered, "
            "backfill_attempts FROM data_quality ORDER BY gap_start").fetchall()


def test_5m_run_writes_exactly_the_simulators_rows_and_a_rerun_writes_nothing(
        db_dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    metrics = CollectorMetrics("5m")
    runner = CollectorRunner("5m", client, dsn=db_dsn, metrics=metrics)
    first = runner.run_once()
    second = runner.run_once()
    runner.close()

    want = expected(sim, T0)
    assert 200 < len(want) < 500  # a 5-minute block lists the traded third of 800 items
    assert stored(db_dsn) == want
    assert (first.status, first.rows_written, first.block_time) == ("ok", len(want), T0)
    assert (second.status, second.rows_written) == ("ok", 0)
    assert [r[:2] for r in runs(db_dsn, "5m")] == [("ok", len(want)), ("ok", 0)]
    text = metrics.render().decode()
    assert f'gept_collector_rows_written_total{{collector="5m"}} {float(len(want))}' in text
    assert 'gept_collector_runs_total{collector="5m"} 2.0' in text


def test_nulls_and_max_int_prices_round_trip(db_dsn: str, sim: SimulatorServer,
                                             client: WikiClient) -> None:
    runner = CollectorRunner("5m", client, dsn=db_dsn)
    runner.run_once()
    runner.close()
    rows = stored(db_dsn)
    assert any(r[2] == MAX_PRICE or r[4] == MAX_PRICE for r in rows), "a pinned item at max"
    assert any(r[2] is None for r in rows)
    assert any(r[4] is None for r in rows)
    assert rows == expected(sim, T0)


def test_missing_blocks_become_a_gap_that_backfill_recovers(
        db_dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    runner = CollectorRunner("5m", client, dsn=db_dsn, auto_backfill=False)
    runner.run_once()                     # block T0
    sim.clock.advance(3 * 300)            # the collector was away for T0+5 and T0+10 min
    run = runner.run_once()               # block T0+15
    runner.close()
    assert run.block_time == T0 + timedelta(minutes=15)
    assert "gap recorded" in (run.error or "")
    gap = open_gaps(db_dsn)
    assert gap == [("price_data_5min", None, T0 + timedelta(minutes=5),
                    T0 + timedelta(minutes=15), "DETECTED", 0, 0)]

    report = backfill(db_dsn, client, "5m", T0, T0 + timedelta(minutes=20))
    missing = (T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    assert report.ok
    assert report.blocks_written == 2
    assert report.blocks_present == 2
    assert stored(db_dsn) == expected(sim, T0, *missing, T0 + timedelta(minutes=15))
    (_, _, _, _, status, recovered, attempts), = open_gaps(db_dsn)
    assert (status, recovered, attempts) == ("BACKFILLED", len(expected(sim, *missing)), 1)

    again = backfill(db_dsn, client, "5m", T0, T0 + timedelta(minutes=20))
    assert again.blocks_written == 0
    assert again.rows_written == 0
    assert again.ok


def test_backfill_marks_a_gap_unrecoverable_after_repeated_failures(
        db_dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    with psycopg.connect(db_dsn) as conn:
        gaps.record(conn, "price_data_5min", T0, T0 + timedelta(minutes=5))
        conn.commit()
    statuses = []
    for _ in range(gaps.MAX_ATTEMPTS):
        sim.faults.push(["500"] * 4, paths=["/5m"])
        report = backfill(db_dsn, client, "5m", T0, T0 + timedelta(minutes=5))
        assert not report.ok
        assert report.blocks_failed == 1
        statuses.append(open_gaps(db_dsn)[0][4])
    assert statuses == ["DETECTED"] * (gaps.MAX_ATTEMPTS - 1) + ["UNRECOVERABLE"]
    assert stored(db_dsn) == set()


@pytest.mark.parametrize("faults", [
    ["429", "503", "malformed"],
    ["wrong-types", "500"],
    [{"kind": "timeout", "delay": 2.5}, "empty"],
    ["reset", {"kind": "slow", "delay": 2.5}],
])
def test_upstream_faults_are_retried_and_the_block_is_whole(
        db_dsn: str, sim: SimulatorServer, client: WikiClient, faults: list[Any]) -> None:
    sim.faults.push(faults, paths=["/5m"])
    runner = CollectorRunner("5m", client, dsn=db_dsn)
    run = runner.run_once()
    runner.close()
    assert run.status == "ok"
    assert stored(db_dsn) == expected(sim, T0)


def test_upstream_failure_after_retries_is_recorded_and_nothing_is_written(
        db_dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    sim.faults.push(["503"] * 4, paths=["/5m"])
    metrics = CollectorMetrics("5m")
    runner = CollectorRunner("5m", client, dsn=db_dsn, metrics=metrics)
    run = runner.run_once()
    runner.close()
    assert run.status == "failed"
    assert "503" in (run.error or "")
    assert stored(db_dsn) == set()
    assert [(r[0], r[1]) for r in runs(db_dsn, "5m")] == [("failed", 0)]
    assert 'gept_collector_failures_total{collector="5m"} 1.0' in metrics.render().decode()


def test_a_bad_item_row_is_rejected_and_counted_not_fatal(db_dsn: str) -> None:
    from gept.db.writer import write_price_blocks

    good = PriceBlock(2, T0, 100, 1, 90, 2)
    bad = [PriceBlock(3, T0, -5, 1, 90, 2), PriceBlock(2**31, T0, 1, 1, 1, 1),
           PriceBlock(4, T0, MAX_PRICE + 1, 0, None, 0)]
    with psycopg.connect(db_dsn) as conn:
        result = write_price_blocks(conn, "price_data_5min", [good, *bad])
    assert (result.written, result.rejected, result.duplicates) == (1, 3, 0)
    assert stored(db_dsn) == {(2, T0, 100, 1, 90, 2)}


def test_a_bad_row_in_the_api_answer_costs_only_that_row(db_dsn: str) -> None:
    """A real HTTP server answering one item with a negative price."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps({"timestamp": int(T0.timestamp()), "data": {
        "2": {"avgHighPrice": 100, "highPriceVolume": 1, "avgLowPrice": 90,
              "lowPriceVolume": 2},
        "3": {"avgHighPrice": -7, "highPriceVolume": 1, "avgLowPrice": 90,
              "lowPriceVolume": 2},
        "4": {"avgHighPrice": None, "highPriceVolume": 0, "avgLowPrice": MAX_PRICE,
              "lowPriceVolume": 5}}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with WikiClient(f"http://127.0.0.1:{httpd.server_address[1]}", UA) as c:
            runner = CollectorRunner("5m", c, dsn=db_dsn)
            run = runner.run_once()
            runner.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (run.status, run.rows_written, run.rows_rejected) == ("ok", 2, 1)
    assert stored(db_dsn) == {(2, T0, 100, 1, 90, 2), (4, T0, None, 0, MAX_PRICE, 5)}


def test_every_other_collector_writes_once_and_is_idempotent(
        db_dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    tables = {"1h": "prices_1h", "latest": "prices_latest_1m", "items": "items",
              "news": "osrs_news", "players": "player_counts"}
    sim.clock.advance(3600)
    for name, table in tables.items():
        runner = CollectorRunner(name, client, dsn=db_dsn)
        first, second = runner.run_once(), runner.run_once()
        runner.close()
        assert (first.status, second.status) == ("ok", "ok"), (name, first, second)
        assert first.rows_written > 0, (name, first)
        assert second.rows_written == 0, (name, second)
        with psycopg.connect(db_dsn) as conn:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert count == (first.rows_written,), name
    # now = 13:05:20: the newest complete hour is 12:00-13:00
    assert stored(db_dsn, "prices_1h") == expected(sim, T0, step=3600)
    with psycopg.connect(db_dsn) as conn:
        players = conn.execute('SELECT "timestamp" FROM player_counts').fetchone()
        item = conn.execute("SELECT name, wiki_url FROM items ORDER BY item_id LIMIT 1"
                            ).fetchone()
    assert players is not None
    assert int(players[0].timestamp()) % 300 == 0
    assert item is not None
    assert item[1].endswith(item[0].replace(" ", "_"))


def test_a_batch_the_database_refuses_is_recorded_and_does_not_block_later_ones(
        db_dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    from gept.collectors.jobs import Batch
    from gept.collectors.runs import RunRecord
    from gept.db.writer import WriteResult

    def poison(conn: psycopg.Connection[Any], _bc: Any) -> WriteResult:
        with conn.transaction():
            conn.execute("SELECT 1 / 0")
        return WriteResult("price_data_5min", 1, 0)

    runner = CollectorRunner("5m", client, dsn=db_dsn)
    runner.pending.append(Batch(RunRecord("5m", block_time=T0), 1, 0, poison))
    run = runner.run_once()
    runner.close()
    assert run.status == "ok"
    assert stored(db_dsn) == expected(sim, T0)
    statuses = [(r[0], "division by zero" in (r[4] or "")) for r in runs(db_dsn, "5m")]
    assert statuses == [("failed", True), ("ok", False)]


def test_loop_is_bounded_and_stops_when_asked(db_dsn: str, sim: SimulatorServer,
                                              client: WikiClient) -> None:
    import threading
    import time

    runner = CollectorRunner("latest", client, dsn=db_dsn)
    runner.next_due = lambda now: now + 0.05  # type: ignore[method-assign]  # a faster clock
    records = runner.loop(max_runs=3, install_signals=False)
    assert [r.status for r in records] == ["ok", "ok", "ok"]

    runner.next_due = lambda now: now + 3600  # type: ignore[method-assign]  # never due
    threading.Timer(0.5, runner.stop).start()
    t0 = time.monotonic()
    records = runner.loop(install_signals=False)
    assert len(records) == 1
    assert time.monotonic() - t0 < 30  # stopped while sleeping, not after an hour


def test_an_aborted_backfill_hands_its_gaps_back(db_dsn: str, client: WikiClient,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(db_dsn) as conn:
        gaps.record(conn, "price_data_5min", T0, T0 + timedelta(minutes=10))
        conn.commit()

    def interrupted(_ts: datetime | None = None) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "five_minute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        backfill(db_dsn, client, "5m", T0, T0 + timedelta(minutes=10))
    (row,) = open_gaps(db_dsn)
    assert (row[4], row[6]) == ("DETECTED", 1)


def test_a_short_gap_is_backfilled_by_the_collector_itself(
        db_dsn: str, sim: SimulatorServer, client: WikiClient) -> None:
    runner = CollectorRunner("5m", client, dsn=db_dsn)
    runner.run_once()                     # T0
    sim.clock.advance(3 * 300)
    runner.run_once()                     # T0+15: T0+5 and T0+10 are missing ...
    runner.close()
    blocks = [T0 + timedelta(minutes=m) for m in (0, 5, 10, 15)]
    assert stored(db_dsn) == expected(sim, *blocks)   # ... and recovered at once
    (gap,) = open_gaps(db_dsn)
    assert gap[4] == "BACKFILLED"
    assert gap[5] == len(expected(sim, *blocks[1:3]))
