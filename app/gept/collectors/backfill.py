"""Backfill: fetch past blocks with the API's ``timestamp=`` parameter, block by block.

Blocks already stored are skipped (no API call), fetched blocks are written idempotently in
groups of ``GROUP_ROWS`` rows (one transaction each), and the ``data_quality`` gaps inside
the range move
``BACKFILLING`` → ``BACKFILLED`` (with ``rows_recovered``) — or back to ``DETECTED`` with the
error, and ``UNRECOVERABLE`` after ``gaps.MAX_ATTEMPTS`` failed attempts.

Example:
    >>> report = backfill(dsn, client, "5m", since, until)        # doctest: +SKIP
    >>> report.rows_written, report.blocks_failed                   # doctest: +SKIP
    (8000, 0)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from gept.collectors import gaps
from gept.core.clock import align
from gept.core.errors import GeptError, InvalidInput
from gept.db.connect import connect, with_retry
from gept.db.writer import write_price_blocks
from gept.market.client import WikiClient
from gept.market.models import PriceBlock

log = logging.getLogger(__name__)
R = TypeVar("R")
GROUP_ROWS = 40_000
"""Fetched blocks are written together once they hold this many rows (about ten 5-minute
blocks): one transaction per group instead of per block, so a long backfill runs at the
speed of a plain COPY. Memory stays bounded by the group."""
MAX_BLOCKS = 100_000
"""One backfill covers at most this many blocks (about a year of 5-minute blocks)."""


@dataclass
class BackfillReport:
    """What a backfill did."""

    table: str
    since: datetime
    until: datetime
    blocks_total: int = 0
    blocks_present: int = 0
    blocks_written: int = 0
    blocks_empty: int = 0
    blocks_failed: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    gaps: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every block is now stored or was stored already."""
        return self.blocks_failed == 0 and self.blocks_empty == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"table": self.table, "since": self.since.isoformat(),
                "until": self.until.isoformat(), "ok": self.ok,
                "blocks_total": self.blocks_total, "blocks_present": self.blocks_present,
                "blocks_written": self.blocks_written, "blocks_empty": self.blocks_empty,
                "blocks_failed": self.blocks_failed, "rows_written": self.rows_written,
                "rows_rejected": self.rows_rejected, "gaps": self.gaps,
                "errors": self.errors[:20]}


def block_range(since: datetime, until: datetime, step: int) -> list[datetime]:
    """Block starts covering [since, until): since rounded down, until exclusive.

    Raises:
        InvalidInput: when the range is empty, reversed, naive or too long.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("--since and --until must carry a timezone (UTC)", field="since")
    if until <= since:
        raise InvalidInput("--until must be after --since", field="until")
    start = align(since, step)
    count = -(-int((until - start).total_seconds()) // step)
    if count > MAX_BLOCKS:
        raise InvalidInput(f"range holds {count} blocks; at most {MAX_BLOCKS} per backfill",
                           field="until")
    return [start + timedelta(seconds=step * i) for i in range(count)]


Outcome = dict[datetime, tuple[bool, int, str | None]]
"""Block -> (stored, rows it now holds, why not)."""
Fetched = list[tuple[datetime, tuple[PriceBlock, ...]]]


class _Database:
    """One autocommit connection, reopened and retried when it is lost mid-backfill."""

    def __init__(self, dsn: str | None, attempts: int, delay: float) -> None:
        self.dsn, self.attempts, self.delay = dsn, attempts, delay
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.dsn, autocommit=True)
        return self._conn

    def run(self, func: Callable[[psycopg.Connection[Any]], R], what: str) -> R:
        """``func(connection)``, retried on a lost connection (``with_retry``)."""
        def once() -> R:
            try:
                return func(self._connection())
            except psycopg.OperationalError:
                self.close()
                raise
        result: R = with_retry(once, attempts=self.attempts, delay=self.delay, what=what)
        return result

    def close(self) -> None:
        """Close the connection, if open."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _start(c: psycopg.Connection[Any], table: str, step: int, blocks: list[datetime],
           report: BackfillReport, force: bool) -> tuple[list[gaps.Gap], list[datetime]]:
    """Mark the range's open gaps BACKFILLING; return them and the blocks to fetch."""
    with c.transaction():
        # Only gaps wholly inside the range are this backfill's to close; blocks of a gap
        # that sticks out are still written, and the gap stays open.
        open_gaps = [g for g in gaps.open_overlapping(c, table, report.since, report.until)
                     if report.since <= g.start and g.end <= report.until]
        gaps.mark_backfilling(c, [g.id for g in open_gaps])
    missing = blocks if force else gaps.missing_blocks(c, table, step, report.since,
                                                       report.until)
    return open_gaps, missing


def _block_counts(c: psycopg.Connection[Any], table: str, blocks: list[datetime]
                  ) -> dict[datetime, int]:
    """Rows each block holds now."""
    found = c.execute(sql.SQL('SELECT "timestamp", count(*) FROM {t} WHERE "timestamp" = '
                              'ANY(%s) GROUP BY 1').format(t=sql.Identifier(table)),
                      (blocks,)).fetchall()
    return {r[0]: int(r[1]) for r in found}


def _write_group(db: _Database, table: str, group: Fetched, outcome: Outcome,
                 report: BackfillReport) -> None:
    """Write several fetched blocks in one transaction and account for each block."""
    rows = [r for _, block_rows in group for r in block_rows]
    result = db.run(lambda c: write_price_blocks(c, table, rows),
                    f"backfill write {group[0][0].isoformat()} +{len(group)} blocks")
    report.blocks_written += len(group)
    report.rows_written += result.written
    report.rows_rejected += result.rejected
    if result.written == len(rows):
        per_block = {block: len(block_rows) for block, block_rows in group}
    else:  # some rows were already there (or refused): count what each block holds now
        blocks = [b for b, _ in group]
        per_block = db.run(lambda c: _block_counts(c, table, blocks), "backfill row counts")
    for block, _ in group:
        outcome[block] = (True, per_block.get(block, 0), None)


def _fetch_all(db: _Database, client: WikiClient, key: str, table: str,
               missing: list[datetime], report: BackfillReport, pause: float,
               sleep: Callable[[float], None]) -> Outcome:
    """Fetch every missing block, writing them in groups of about ``GROUP_ROWS`` rows."""
    outcome: Outcome = {}
    buffered: Fetched = []
    for i, block in enumerate(missing):
        if i and pause > 0:
            sleep(pause)
        try:
            snap = client.five_minute(block) if key == "5m" else client.hourly(block)
        except GeptError as exc:
            report.blocks_failed += 1
            report.errors.append(f"{block.isoformat()}: {exc.message}")
            outcome[block] = (False, 0, exc.message)
            log.warning("backfill %s %s failed: %s", table, block.isoformat(), exc.message)
            continue
        report.rows_rejected += len(snap.rejected)
        if not snap.rows:
            report.blocks_empty += 1
            outcome[block] = (False, 0, "the API has no data for this block")
            continue
        buffered.append((block, snap.rows))
        if sum(len(rows) for _, rows in buffered) >= GROUP_ROWS:
            _write_group(db, table, buffered, outcome, report)
            buffered = []
    if buffered:
        _write_group(db, table, buffered, outcome, report)
    return outcome


def _finish(c: psycopg.Connection[Any], open_gaps: list[gaps.Gap], outcome: Outcome,
            report: BackfillReport, max_attempts: int) -> None:
    """Close each gap by what its blocks' outcome says (BACKFILLED, DETECTED, ...)."""
    with c.transaction():
        for gap in open_gaps:
            inside = [b for b in outcome if gap.start <= b < gap.end]
            failed = [outcome[b][2] for b in inside if not outcome[b][0]]
            status = gaps.mark_result(
                c, gap, ok=not failed, rows=sum(outcome[b][1] for b in inside),
                error=f"{len(failed)} block(s) failed: {failed[0]}" if failed else None,
                max_attempts=max_attempts)
            report.gaps[status] = report.gaps.get(status, 0) + 1


def backfill(dsn: str | None, client: WikiClient, key: str, since: datetime,
             until: datetime, *, pause: float = 0.0, force: bool = False,
             db_attempts: int = 5, db_delay: float = 1.0,
             sleep: Callable[[float], None] = time.sleep,
             max_attempts: int = gaps.MAX_ATTEMPTS) -> BackfillReport:
    """Fetch and store every missing block of [since, until) for table ``key`` (5m or 1h).

    Args:
        dsn: the database (None: the configured one).
        client: the API client (its own retries apply to each block).
        key: ``5m`` or ``1h``.
        since: first block (rounded down to a block start).
        until: end of the range, exclusive.
        pause: seconds between API calls (be gentle with the wiki).
        force: fetch blocks even when some rows of them are stored (rows already there are
            kept; only missing items are added).
        db_attempts: reconnect attempts when the database connection is lost.
        db_delay: first wait between reconnects (doubles each time).
        sleep: how to pause (tests inject a no-op).
        max_attempts: failed backfills after which a gap becomes UNRECOVERABLE.
    """
    table, step = gaps.table_for(key)
    blocks = block_range(since, until, step)
    report = BackfillReport(table, blocks[0], blocks[-1] + timedelta(seconds=step),
                            blocks_total=len(blocks))
    db = _Database(dsn, db_attempts, db_delay)
    try:
        open_gaps, missing = db.run(
            lambda c: _start(c, table, step, blocks, report, force), "backfill start")
    except BaseException:
        db.close()
        raise
    try:
        report.blocks_present = len(blocks) - len(missing)
        outcome = _fetch_all(db, client, key, table, missing, report, pause, sleep)
        db.run(lambda c: _finish(c, open_gaps, outcome, report, max_attempts),
               "backfill finish")
    except BaseException as exc:
        # Do not leave the gaps BACKFILLING: hand them back for the next attempt.
        _release(dsn, [g.id for g in open_gaps], f"backfill aborted: {exc}")
        raise
    finally:
        db.close()
    return report


def _release(dsn: str | None, ids: list[int], error: str) -> None:
    """Best effort: BACKFILLING gaps go back to DETECTED (the database may be down)."""
    if not ids:
        return
    try:
        with connect(dsn, autocommit=True) as c:
            c.execute("UPDATE data_quality SET status = 'DETECTED', error_message = %s "
                      "WHERE id = ANY(%s) AND status = 'BACKFILLING'", (error[:2000], ids))
    except (psycopg.Error, GeptError) as exc:
        log.warning("could not release gaps %s: %s", ids, exc)
