"""Prices the clients see besides predictions: hourly history, sparklines, latest prices.

Hourly buckets are built from the 5-minute table: ``high``/``low`` are the bucket's highest
``avg_high_price`` and lowest ``avg_low_price``; ``avgHigh``/``avgLow`` their means. The
latest price of an item is its newest row in ``prices_latest_1m`` (the 1-minute collector).

Example:
    >>> async with pool.connection() as conn:                  # doctest: +SKIP
    ...     name, points = await hourly(conn, 4151, 24)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gept.engine.contract import Trend, trend_of
from gept.engine.recommend import iso

Conn = AsyncConnection[Any]


async def hourly(conn: Conn, item_id: int, hours: int
                 ) -> tuple[str, list[dict[str, Any]]] | None:
    """The item's name and hourly buckets of the last ``hours`` (None: unknown item)."""
    cur = await conn.execute("SELECT name FROM items WHERE item_id = %s", (item_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    cur = await conn.execute("""
        SELECT date_trunc('hour', "timestamp") AS h, max(avg_high_price), min(avg_low_price),
               round(avg(avg_high_price))::bigint, round(avg(avg_low_price))::bigint
          FROM price_data_5min
         WHERE item_id = %(i)s AND "timestamp" > now() - make_interval(hours => %(h)s)
         GROUP BY 1 ORDER BY 1""", {"i": item_id, "h": hours})
    points = []
    for h, high, low, avg_high, avg_low in await cur.fetchall():
        high, low = high or low, low or high  # one side missing: the other (never NaN)
        if high is None or low is None:
            continue
        points.append({"timestamp": iso(h), "high": int(high), "low": int(low),
                       "avgHigh": int(avg_high or high), "avgLow": int(avg_low or low)})
    return row[0], points


def history_trend(points: Sequence[dict[str, Any]]) -> tuple[Trend, float]:
    """Trend and percent change from the first to the last hourly mid price."""
    if len(points) < 2:
        return "Stable", 0.0
    first = (points[0]["high"] + points[0]["low"]) / 2
    last = (points[-1]["high"] + points[-1]["low"]) / 2
    recent = sum((p["high"] + p["low"]) / 2 for p in points[-2:]) / 2
    mean = sum((p["high"] + p["low"]) / 2 for p in points) / len(points)
    change = 0.0 if first == 0 else round((last - first) / first * 100, 2)
    return trend_of(recent, mean), change


async def sparkline(conn: Conn, item_id: int, hours: int) -> list[dict[str, Any]]:
    """``[{timestamp, price}]`` hourly mid prices (a recommendation's ``priceHistory``)."""
    found = await hourly(conn, item_id, hours)
    if found is None:
        return []
    return [{"timestamp": p["timestamp"], "price": (p["high"] + p["low"]) // 2}
            for p in found[1]]


async def latest(conn: Conn, item_ids: Sequence[int]) -> dict[int, tuple[int | None, int | None]]:
    """The newest (high, low) of each item in ``prices_latest_1m`` within the last hour."""
    if not item_ids:
        return {}
    cur = await conn.execute("""
        SELECT DISTINCT ON (item_id) item_id, high, low
          FROM prices_latest_1m
         WHERE item_id = ANY (%(ids)s) AND "timestamp" > now() - interval '1 hour'
         ORDER BY item_id, "timestamp" DESC""", {"ids": list(item_ids)})
    return {int(i): (h, lo) for i, h, lo in await cur.fetchall()}


async def item_rows(conn: Conn, batch_time: datetime, item_id: int) -> list[dict[str, Any]]:
    """Every (window, offset) prediction of one item in one batch, with current prices."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        SELECT item_name, hour_offset, offset_pct::float8 AS offset_pct, fill_probability,
               expected_value, buy_price, sell_price, current_high, current_low, model_id
          FROM predictions WHERE "time" = %(t)s AND item_id = %(i)s
         ORDER BY hour_offset, offset_pct""", {"t": batch_time, "i": item_id})
    return await cur.fetchall()
