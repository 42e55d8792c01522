"""Partitions for the time-partitioned tables, created ahead of time.

No table has a DEFAULT partition; instead every writer calls :func:`ensure` for the time range
it is about to write, and ``gept db migrate`` creates partitions for the months around now.
That way an insert never fails because a month has no partition, and retention can drop
whole partitions.

Example:
    >>> ensure(conn, "price_data_5min", start, end)   # doctest: +SKIP
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql

from gept.core.clock import utcnow

Granularity = Literal["month", "day"]

# The one place that says how each partitioned table is cut.
PARTITIONED: dict[str, Granularity] = {
    "price_data_5min": "month",
    "prices_latest_1m": "day",
    "predictions": "day",
}

_known: set[tuple[str, str]] = set()


def _floor(ts: datetime, unit: Granularity) -> datetime:
    ts = ts.astimezone(UTC)
    if unit == "month":
        return datetime(ts.year, ts.month, 1, tzinfo=UTC)
    return datetime(ts.year, ts.month, ts.day, tzinfo=UTC)


def _next(ts: datetime, unit: Granularity) -> datetime:
    if unit == "month":
        return datetime(ts.year + ts.month // 12, ts.month % 12 + 1, 1, tzinfo=UTC)
    return ts + timedelta(days=1)


def partition_name(table: str, start: datetime, unit: Granularity) -> str:
    """``price_data_5min_p202601`` / ``predictions_p20260131``."""
    suffix = start.strftime("%Y%m") if unit == "month" else start.strftime("%Y%m%d")
    return f"{table}_p{suffix}"


def ensure(conn: psycopg.Connection[Any], table: str, start: datetime,
           end: datetime | None = None) -> list[str]:
    """Create the partitions of ``table`` covering [start, end] (inclusive); return new ones."""
    unit = PARTITIONED[table]
    end = end or start
    created: list[str] = []
    cursor = _floor(start, unit)
    while cursor <= end:
        name = partition_name(table, cursor, unit)
        if (conn.info.dsn, name) not in _known:
            upper = _next(cursor, unit)
            with conn.transaction():
                row = conn.execute(
                    "SELECT to_regclass(%s), "
                    "to_regprocedure('public.gept_ensure_partition(text,timestamptz)'), "
                    "pg_has_role(current_user, (SELECT relowner FROM pg_class "
                    "WHERE oid = to_regclass(%s)), 'USAGE')", (name, table)).fetchone()
                if row is not None and row[0] is None:
                    if row[1] is not None and not row[2]:
                        # Not the owner (a service role): the owner's SECURITY DEFINER
                        # function creates it (gept.db.roles explains why).
                        conn.execute("SELECT public.gept_ensure_partition(%s, %s)",
                                     (table, cursor))
                    else:
                        conn.execute(sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} "
                            "FOR VALUES FROM ({}) TO ({})").format(
                            sql.Identifier(name), sql.Identifier(table),
                            sql.Literal(cursor), sql.Literal(upper)))
                    created.append(name)
            # Cache only what is committed: inside a caller's transaction a rollback would
            # undo the CREATE and a cached name would then hide the missing partition.
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                _known.add((conn.info.dsn, name))
        cursor = _next(cursor, unit)
    return created


def ensure_default_partitions(conn: psycopg.Connection[Any], *,
                              now: datetime | None = None) -> list[str]:
    """Partitions from last month to three months ahead (days: one week back, two ahead)."""
    now = now or utcnow()
    created: list[str] = []
    for table, unit in PARTITIONED.items():
        if unit == "month":
            created += ensure(conn, table, now - timedelta(days=31), now + timedelta(days=92))
        else:
            created += ensure(conn, table, now - timedelta(days=7), now + timedelta(days=14))
    conn.commit()
    return created


def forget_cache() -> None:
    """Forget which partitions are known to exist (after a database is dropped, in tests)."""
    _known.clear()
