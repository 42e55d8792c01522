"""Gaps in the block tables: detected when a block arrives, found by a scan, repaired by backfill.

A gap is a run of missing blocks of ``price_data_5min`` (300 s) or ``prices_1h`` (3600 s),
stored in ``data_quality`` with ``item_id`` NULL (table-wide). It covers the blocks whose
start ``t`` satisfies ``gap_start <= t < gap_end``; ``gap_end`` is the start of the first
block present after it, so ``gap_duration_seconds / step`` is the number of missing blocks.

Lifecycle: ``DETECTED`` → ``BACKFILLING`` (a backfill is fetching it) → ``BACKFILLED``
(``rows_recovered`` set) or back to ``DETECTED`` with ``error_message``, and
``UNRECOVERABLE`` after ``MAX_ATTEMPTS`` failed backfills.

Example:
    >>> scan(conn, "5m", since, until)                      # doctest: +SKIP
    [Gap(table='price_data_5min', start=..., end=..., status='DETECTED', ...)]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql

from gept.core.errors import InvalidInput

TableKey = Literal["5m", "1h"]
TABLES: dict[str, tuple[str, int]] = {"5m": ("price_data_5min", 300), "1h": ("prices_1h", 3600)}
"""``--table`` value → (table, block length in seconds)."""
MAX_ATTEMPTS = 3
OPEN = ("DETECTED", "BACKFILLING")


def table_for(key: str) -> tuple[str, int]:
    """The table and block length for ``5m`` or ``1h``.

    Raises:
        InvalidInput: naming the ``table`` field for anything else.
    """
    try:
        return TABLES[key]
    except KeyError:
        raise InvalidInput(f"table must be one of {', '.join(TABLES)}, got {key!r}",
                           field="table") from None


@dataclass(frozen=True)
class Gap:
    """One row of ``data_quality``."""

    id: int
    table: str
    start: datetime
    end: datetime
    status: str
    attempts: int
    rows_recovered: int
    error: str | None
    detected_at: datetime

    def blocks(self, step: int) -> int:
        """How many blocks the gap holds."""
        return int((self.end - self.start).total_seconds()) // step

    def to_dict(self, step: int | None = None) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "id": self.id, "table": self.table, "gap_start": self.start.isoformat(),
            "gap_end": self.end.isoformat(),
            "seconds": int((self.end - self.start).total_seconds()), "status": self.status,
            "attempts": self.attempts, "rows_recovered": self.rows_recovered,
            "error": self.error, "detected_at": self.detected_at.isoformat()}
        if step:
            out["blocks"] = self.blocks(step)
        return out


_GAP_COLS = ("id, table_name, gap_start, gap_end, status, backfill_attempts, rows_recovered, "
             "error_message, detected_at")


def _gap(row: tuple[Any, ...]) -> Gap:
    return Gap(int(row[0]), str(row[1]), row[2], row[3], str(row[4]), int(row[5]),
               int(row[6]), row[7], row[8])


def record(conn: psycopg.Connection[Any], table: str, start: datetime,
           end: datetime) -> None:
    """Record a table-wide gap [start, end); an open gap with the same start is widened."""
    conn.execute(
        "INSERT INTO data_quality (table_name, item_id, gap_start, gap_end) "
        "VALUES (%s, NULL, %s, %s) ON CONFLICT (table_name, item_id, gap_start) DO UPDATE "
        "SET gap_end = GREATEST(data_quality.gap_end, EXCLUDED.gap_end) "
        "WHERE data_quality.status IN ('DETECTED', 'BACKFILLING')", (table, start, end))


def detect_before(conn: psycopg.Connection[Any], table: str, block: datetime,
                  step: int) -> tuple[datetime, datetime] | None:
    """When block ``block`` arrives: record the blocks missing since the last stored one.

    Returns the gap recorded, or None (no gap, or an empty table: nothing to compare with).
    """
    row = conn.execute(sql.SQL('SELECT max("timestamp") FROM {t} WHERE "timestamp" < %s')
                       .format(t=sql.Identifier(table)), (block,)).fetchone()
    last = row[0] if row else None
    if last is None:
        return None
    start = last + timedelta(seconds=step)
    if start >= block:
        return None
    record(conn, table, start, block)
    return start, block


def missing_blocks(conn: psycopg.Connection[Any], table: str, step: int, since: datetime,
                   until: datetime) -> list[datetime]:
    """Block starts in [since, until) with no row at all (one index probe per block)."""
    rows = conn.execute(sql.SQL(
        "SELECT g FROM generate_series(%s::timestamptz, %s::timestamptz - make_interval("
        "secs => %s), make_interval(secs => %s)) AS g "
        'WHERE NOT EXISTS (SELECT 1 FROM {t} p WHERE p."timestamp" = g) ORDER BY g').format(
        t=sql.Identifier(table)), (since, until, step, step)).fetchall()
    return [r[0] for r in rows]


def ranges(blocks: list[datetime], step: int) -> list[tuple[datetime, datetime]]:
    """Group sorted block starts into [start, end) runs of consecutive blocks.

    Example:
        >>> from datetime import UTC, datetime
        >>> t = [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 5, 15)]
        >>> [(a.minute, b.minute) for a, b in ranges(t, 300)]
        [(0, 10), (15, 20)]
    """
    out: list[tuple[datetime, datetime]] = []
    delta = timedelta(seconds=step)
    for block in blocks:
        if out and out[-1][1] == block:
            out[-1] = (out[-1][0], block + delta)
        else:
            out.append((block, block + delta))
    return out


def scan(conn: psycopg.Connection[Any], key: str, since: datetime,
         until: datetime) -> list[tuple[datetime, datetime]]:
    """Find missing blocks in [since, until) and record the ones not yet known.

    Only the stretch between the first and the last stored block of the window counts:
    before the first block there was no collector, after the last one the collector may
    simply not have run yet. Returns the newly recorded ranges.
    """
    table, step = table_for(key)
    bounds = conn.execute(sql.SQL(
        'SELECT min("timestamp"), max("timestamp") FROM {t} '
        'WHERE "timestamp" >= %s AND "timestamp" < %s').format(t=sql.Identifier(table)),
        (since, until)).fetchone()
    if bounds is None or bounds[0] is None:
        return []
    first, last = bounds
    new: list[tuple[datetime, datetime]] = []
    with conn.transaction():
        for start, end in ranges(missing_blocks(conn, table, step, first, last), step):
            covered = conn.execute(
                "SELECT 1 FROM data_quality WHERE table_name = %s AND item_id IS NULL "
                "AND gap_start <= %s AND gap_end >= %s LIMIT 1", (table, start, end)).fetchone()
            if covered is None:
                record(conn, table, start, end)
                new.append((start, end))
    return new


def listing(conn: psycopg.Connection[Any], *, statuses: tuple[str, ...] | None = None,
            table: str | None = None, limit: int = 500) -> list[Gap]:
    """Gaps, newest first; by default the unresolved ones (open and unrecoverable)."""
    wanted = list(statuses or ("DETECTED", "BACKFILLING", "UNRECOVERABLE"))
    rows = conn.execute(
        f"SELECT {_GAP_COLS} FROM data_quality WHERE status = ANY(%s) "
        "AND (%s::text IS NULL OR table_name = %s) ORDER BY gap_start DESC LIMIT %s",
        (wanted, table, table, limit)).fetchall()
    return [_gap(r) for r in rows]


def open_overlapping(conn: psycopg.Connection[Any], table: str, since: datetime,
                     until: datetime) -> list[Gap]:
    """Open gaps of ``table`` that overlap [since, until)."""
    rows = conn.execute(
        f"SELECT {_GAP_COLS} FROM data_quality WHERE table_name = %s AND item_id IS NULL "
        "AND status = ANY(%s) AND gap_start < %s AND gap_end > %s ORDER BY gap_start",
        (table, list(OPEN), until, since)).fetchall()
    return [_gap(r) for r in rows]


def mark_backfilling(conn: psycopg.Connection[Any], ids: list[int]) -> None:
    """A backfill starts on these gaps: one more attempt each."""
    conn.execute(
        "UPDATE data_quality SET status = 'BACKFILLING', "
        "backfill_attempts = backfill_attempts + 1, backfill_source = 'wiki_api' "
        "WHERE id = ANY(%s)", (ids,))


def mark_result(conn: psycopg.Connection[Any], gap: Gap, *, ok: bool, rows: int,
                error: str | None, max_attempts: int = MAX_ATTEMPTS) -> str:
    """Close a gap as BACKFILLED, or send it back to DETECTED / on to UNRECOVERABLE."""
    if ok:
        status = "BACKFILLED"
    else:
        attempts = conn.execute("SELECT backfill_attempts FROM data_quality WHERE id = %s",
                                (gap.id,)).fetchone()
        status = ("UNRECOVERABLE" if attempts is not None and int(attempts[0]) >= max_attempts
                  else "DETECTED")
    conn.execute(
        "UPDATE data_quality SET status = %s, rows_recovered = rows_recovered + %s, "
        "error_message = %s, resolved_at = CASE WHEN %s IN ('BACKFILLED', 'UNRECOVERABLE') "
        "THEN now() END WHERE id = %s", (status, rows, error, status, gap.id))
    return status
