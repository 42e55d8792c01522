"""Test data for the engine: items, committed predictions batches and 5-minute volumes.

Batches are written the way inference writes them: rows into ``predictions`` and one row in
``prediction_batches`` in the same transaction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from gept.db import partitions


@dataclass(frozen=True)
class Row:
    """One prediction row (an item at one window and one offset)."""

    item_id: int
    hour_offset: int
    offset_pct: float
    fill_probability: float
    expected_value: float
    buy_price: int
    sell_price: int
    confidence: str = "medium"
    model_id: int | None = 1


def seed_items(conn: psycopg.Connection[Any],
               items: Iterable[tuple[int, str, int | None]]) -> None:
    """Insert ``(item_id, name, buy_limit)`` rows."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO items (item_id, name, buy_limit) VALUES (%s, %s, %s)",
                        list(items))
    conn.commit()


def seed_batch(conn: psycopg.Connection[Any], batch_time: datetime, rows: Iterable[Row],
               names: dict[int, str] | None = None, role: str = "primary") -> None:
    """Commit one predictions batch (rows + its prediction_batches row) in one transaction."""
    rows = list(rows)
    partitions.ensure(conn, "predictions", batch_time)
    conn.commit()
    names = names or {}
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO predictions (time, item_id, item_name, hour_offset, target_hour, "
            "offset_pct, fill_probability, expected_value, buy_price, sell_price, confidence, "
            "model_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(batch_time, r.item_id, names.get(r.item_id, f"Item {r.item_id}"), r.hour_offset,
              batch_time + timedelta(hours=r.hour_offset), r.offset_pct, r.fill_probability,
              r.expected_value, r.buy_price, r.sell_price, r.confidence, r.model_id)
             for r in rows])
        cur.execute(
            "INSERT INTO prediction_batches (time, run_id, role, rows_written, items) "
            "VALUES (%s, %s, %s, %s, %s)",
            (batch_time, f"run-{batch_time:%Y%m%d%H%M}", role, len(rows),
             len({r.item_id for r in rows})))


def seed_volume(conn: psycopg.Connection[Any], batch_time: datetime,
                volumes: dict[int, int]) -> None:
    """One 5-minute block per item just before the batch, with the given 24 h volume."""
    ts = batch_time - timedelta(minutes=5)
    partitions.ensure(conn, "price_data_5min", ts)
    conn.commit()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO price_data_5min (item_id, timestamp, avg_high_price, "
            "high_price_volume, avg_low_price, low_price_volume) VALUES (%s, %s, 100, %s, 99, %s)",
            [(item, ts, vol // 2, vol - vol // 2) for item, vol in volumes.items()])
    conn.commit()


def seed_model(conn: psycopg.Connection[Any], status: str = "ACTIVE") -> int:
    """A registry entry (validated, so it may be ACTIVE)."""
    row = conn.execute(
        "INSERT INTO model_registry (scope, run_id, model_path, artifact_sha256, status, "
        "validation_passed, windows_hours, offsets_pct, mean_auc) VALUES "
        "('global', %s, 'm/model.cbm', repeat('a', 64), %s, true, '{1,4,12,24}', "
        "'{0.0125,0.015}', 0.61) RETURNING id", (f"run-{status}", status)).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


API_KEY = "test-engine-key-0123456789abcdef"
HEADERS = {"X-API-Key": API_KEY}

# (item_id, name, buy_limit, 24 h volume, buy price, sell price at 1.25 % offset)
ITEMS: list[tuple[int, str, int | None, int, int, int]] = [
    (101, "Cheap bones", 10_000, 10_000_000, 100, 104),
    (102, "Abyssal whip", 70, 50_000, 1_500_000, 1_560_000),
    (103, "Rare thing", 1_000, 100, 10_000, 10_400),       # volume caps at 5
    (104, "Limited rune", 3, 1_000_000, 2_000, 2_080),     # buy limit 3
    (105, "Tax trap", 10_000, 1_000_000, 50, 51),          # zero profit after tax
    (106, "Nameless limit", None, 1_000, 5_000, 5_200),    # no buy limit: volume caps at 50
]
WINDOWS = (1, 2, 4, 8, 12, 16, 24)
OFFSETS = (0.0125, 0.015, 0.0175, 0.02, 0.0225)


def market_rows(seed: int = 7) -> list[Row]:
    """A grid of configurations per item with varied fill probabilities and EVs."""
    rng = random.Random(seed)
    rows = []
    for item_id, _, _, _, buy, sell in ITEMS:
        for hours in WINDOWS:
            for offset in OFFSETS:
                rows.append(Row(item_id, hours, offset,
                                fill_probability=round(rng.uniform(0.02, 0.6), 4),
                                expected_value=round(rng.uniform(0.001, 0.03), 5),
                                buy_price=buy, sell_price=sell,
                                confidence=rng.choice(["low", "medium", "high"])))
    return rows


ClientFactory = Callable[..., TestClient]
"""Starts an engine app (lifespan included); keyword arguments override settings."""


def older(batch: datetime, minutes: int) -> datetime:
    """A batch time ``minutes`` before ``batch``."""
    return batch - timedelta(minutes=minutes)
