"""Fill a database with simulator history straight from SQL (for tests and benchmarks).

Bulk-loads :class:`gept.market.simulator.SyntheticMarket` blocks into ``price_data_5min``
with one COPY, derives ``prices_1h`` from them in SQL, and upserts ``items``.

Example:
    >>> with connect() as conn:                                           # doctest: +SKIP
    ...     seed_history(conn, SyntheticMarket(items=20, seed=1), start, end)
    115200
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from gept.db import partitions
from gept.market.simulator import SyntheticMarket


def seed_history(conn: psycopg.Connection[Any], market: SyntheticMarket, start: datetime,
                 end: datetime, *, item_ids: list[int] | None = None,
                 hourly: bool = True) -> int:
    """Write 5-minute blocks in [start, end) (+ hourly aggregates and items); return rows.

    Blocks in which an item did not trade at all are not written (as the collector does).
    """
    hist = market.history_arrays(start, end, 300, item_ids)
    n_t, n_i = hist.avg_high_price.shape
    ts = np.repeat(hist.timestamps, n_i)
    ids = np.tile(hist.item_ids, n_t)
    high = hist.avg_high_price.ravel()
    low = hist.avg_low_price.ravel()
    vh = hist.high_price_volume.ravel()
    vl = hist.low_price_volume.ravel()
    keep = ~(np.isnan(high) & np.isnan(low))
    import pandas as pd

    frame = pd.DataFrame({
        "item_id": ids[keep],
        "ts": pd.to_datetime(ts[keep], unit="s", utc=True),
        "high": pd.array(np.where(np.isnan(high[keep]), -1, high[keep]).astype(np.int64)),
        "vh": vh[keep], "low": pd.array(np.where(np.isnan(low[keep]), -1,
                                                 low[keep]).astype(np.int64)),
        "vl": vl[keep]})
    frame["high"] = frame["high"].astype("Int64").where(frame["high"] >= 0)
    frame["low"] = frame["low"].astype("Int64").where(frame["low"] >= 0)
    buf = io.StringIO()
    frame.to_csv(buf, header=False, index=False, date_format="%Y-%m-%d %H:%M:%S+00")
    last = datetime.fromtimestamp(int(hist.timestamps[-1]), UTC) if n_t else start
    partitions.ensure(conn, "price_data_5min", start, last)
    with conn.transaction():
        with conn.cursor() as cur, cur.copy(
                'COPY price_data_5min (item_id, "timestamp", avg_high_price, '
                "high_price_volume, avg_low_price, low_price_volume) FROM STDIN "
                "(FORMAT CSV)") as copy:
            copy.write(buf.getvalue())
        if hourly:
            conn.execute(
                'INSERT INTO prices_1h (item_id, "timestamp", avg_high_price, '
                "high_price_volume, avg_low_price, low_price_volume) "
                "SELECT item_id, date_trunc('hour', \"timestamp\"), avg(avg_high_price)::bigint,"
                " sum(high_price_volume), avg(avg_low_price)::bigint, sum(low_price_volume) "
                'FROM price_data_5min WHERE "timestamp" >= %s AND "timestamp" < %s '
                "GROUP BY 1, 2 ON CONFLICT (item_id, \"timestamp\") DO NOTHING",
                (start, end))
        wanted = {int(i) for i in hist.item_ids}
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO items (item_id, name, members, buy_limit, cost, lowalch, "
                "highalch) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (item_id) DO NOTHING",
                [(m.item_id, m.name, m.members, m.limit, m.value, m.lowalch, m.highalch)
                 for m in market.mapping() if m.item_id in wanted])
    return int(keep.sum())


def seed_recent(conn: psycopg.Connection[Any], *, items: int, days: float, seed: int = 1,
                market_items: int | None = None, end: datetime | None = None) -> datetime:
    """Seed ``days`` of history for the ``items`` most liquid simulator items, ending at the
    last complete 5-minute block before ``end`` (default now); return that block's start.

    Items that never trade are left out, so every seeded item can be trained and predicted.
    """
    from datetime import timedelta

    from gept.core.clock import align, utcnow

    market = SyntheticMarket(items=market_items or max(40, items * 3), seed=seed)
    stop = align(end or utcnow(), 300)
    start = stop - timedelta(minutes=5 * int(days * 288))
    probe = market.history_arrays(stop - timedelta(days=1), stop, 300)
    traded = (~np.isnan(probe.avg_high_price)).sum(axis=0)
    order = np.argsort(-traded, kind="stable")[:items]
    chosen = sorted(int(probe.item_ids[i]) for i in order)
    seed_history(conn, market, start, stop, item_ids=chosen)
    return stop - timedelta(minutes=5)
