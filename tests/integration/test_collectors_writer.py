"""The bulk writers against a real PostgreSQL: idempotent, atomic, partition-safe."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gept.db.writer import (
    WriteResult,
    upsert_items,
    write_latest,
    write_news,
    write_player_count,
    write_price_blocks,
)
from gept.market.models import MAX_PRICE, ItemMapping, LatestPrice, NewsItem, PriceBlock

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def block(ts: datetime, n: int = 50) -> list[PriceBlock]:
    return [PriceBlock(i, ts, 1000 + i if i % 7 else None, i, MAX_PRICE if i == 3 else 900,
                       2 * i) for i in range(1, n + 1)]


def count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_partitions_are_created_for_any_month_even_years_ahead(db_dsn: str) -> None:
    far = datetime(2031, 7, 1, 0, 5, tzinfo=UTC)
    with psycopg.connect(db_dsn) as conn:
        result = write_price_blocks(conn, "price_data_5min", block(far) + block(T0))
        write_latest(conn, far, [LatestPrice(1, 5, far, 4, far)])
    assert result.written == 100
    assert count(db_dsn, "price_data_5min_p203107") == 50
    assert count(db_dsn, "prices_latest_1m_p20310701") == 1


def test_a_failed_batch_leaves_nothing_behind(db_dsn: str) -> None:
    def explode(_conn: psycopg.Connection[Any], _result: WriteResult) -> None:
        raise RuntimeError("bookkeeping failed after the rows were copied")

    with psycopg.connect(db_dsn) as conn:
        with pytest.raises(RuntimeError):
            write_price_blocks(conn, "price_data_5min", block(T0), before_commit=explode)
        with pytest.raises(RuntimeError):
            write_price_blocks(conn, "price_data_5min", block(T0), before_commit=explode,
                               fast_path=False)
        # The connection is usable again and the partition still exists.
        assert write_price_blocks(conn, "price_data_5min", block(T0)).written == 50
    assert count(db_dsn, "price_data_5min") == 50


def test_partly_stored_block_takes_the_staging_path_and_adds_only_what_is_missing(
        db_dsn: str) -> None:
    rows = block(T0)
    with psycopg.connect(db_dsn) as conn:
        assert write_price_blocks(conn, "prices_1h", rows[:20]).written == 20
        result = write_price_blocks(conn, "prices_1h", rows)
    assert (result.written, result.duplicates) == (30, 20)
    assert count(db_dsn, "prices_1h") == 50


def test_two_writers_racing_for_one_new_block_store_it_once(db_dsn: str) -> None:
    """Both see an empty range and COPY directly; the loser falls back to staging."""
    rows = block(T0, 200)
    copied = threading.Event()
    release = threading.Event()
    results: dict[str, WriteResult] = {}

    def hold(_conn: psycopg.Connection[Any], _result: WriteResult) -> None:
        copied.set()
        release.wait(30)

    def first() -> None:
        with psycopg.connect(db_dsn) as conn:
            results["first"] = write_price_blocks(conn, "price_data_5min", rows,
                                                  before_commit=hold)

    worker = threading.Thread(target=first)
    worker.start()
    assert copied.wait(30)
    releaser = threading.Timer(0.5, release.set)
    releaser.start()
    with psycopg.connect(db_dsn) as conn:
        results["second"] = write_price_blocks(conn, "price_data_5min", rows)
    worker.join(30)
    assert results["first"].written == 200
    assert (results["second"].written, results["second"].duplicates) == (0, 200)
    assert count(db_dsn, "price_data_5min") == 200


def test_latest_items_news_players_round_trip_and_are_idempotent(db_dsn: str) -> None:
    minute = T0 + timedelta(minutes=1)
    latest = [LatestPrice(1, MAX_PRICE, T0, None, None), LatestPrice(2, 5, T0, 4, T0),
              LatestPrice(3, -1, T0, 4, T0)]
    items = [ItemMapping(4151, "Abyssal whip", "A weapon from the abyss.", True, 120001,
                         48000, 72000, 70, "Abyssal whip.png"),
             ItemMapping(2, "Cannonball", None, True, 5, None, None, None, None),
             ItemMapping(7, "   ", None, False, 1, 1, 1, 1, None)]
    news = [NewsItem("g1", "Title", "https://x.invalid/1", "d" * 20_000, "Game updates", T0),
            NewsItem("g2", "Other", None, None, None, None)]
    with psycopg.connect(db_dsn) as conn:
        first = [write_latest(conn, minute, latest), upsert_items(conn, items),
                 write_news(conn, news), write_player_count(conn, T0, 123_456)]
        again = [write_latest(conn, minute, latest), upsert_items(conn, items),
                 write_news(conn, news), write_player_count(conn, T0, 999)]
        changed = upsert_items(conn, [ItemMapping(2, "Cannonball", None, True, 6, None, None,
                                                  None, None)])
        stored_latest = conn.execute(
            'SELECT item_id, "timestamp", high, high_time, low, low_time FROM prices_latest_1m '
            "ORDER BY item_id").fetchall()
        whip = conn.execute("SELECT name, buy_limit, cost, wiki_url, tradeable FROM items "
                            "WHERE item_id = 4151").fetchone()
        desc = conn.execute("SELECT length(description) FROM osrs_news WHERE guid = 'g1'"
                            ).fetchone()
        players = conn.execute('SELECT "timestamp", count FROM player_counts').fetchall()
    assert [(r.written, r.rejected) for r in first] == [(2, 1), (2, 1), (2, 0), (1, 0)]
    assert [r.written for r in again] == [0, 0, 0, 0]
    assert changed.written == 1
    assert stored_latest == [(1, minute, MAX_PRICE, T0, None, None), (2, minute, 5, T0, 4, T0)]
    assert whip == ("Abyssal whip", 70, 120001,
                    "https://oldschool.runescape.wiki/w/Abyssal_whip", True)
    assert desc == (10_000,)
    assert players == [(T0, 123_456)]


def test_writes_inside_a_callers_transaction_commit_with_it(db_dsn: str) -> None:
    from gept.db import partitions

    with psycopg.connect(db_dsn) as conn:
        # Partitions first: creating one inside the open transaction would lock the table
        # against the other connection that counts below.
        partitions.ensure(conn, "price_data_5min", T0)
        conn.execute("SELECT 1")  # the caller's transaction is open
        first = write_price_blocks(conn, "price_data_5min", block(T0), fast_path=False)
        second = write_price_blocks(conn, "price_data_5min", block(T0 + timedelta(minutes=5)),
                                    fast_path=False)
        assert count(db_dsn, "price_data_5min") == 0  # not visible before the caller commits
        conn.commit()
    assert (first.written, second.written) == (50, 50)
    assert count(db_dsn, "price_data_5min") == 100
