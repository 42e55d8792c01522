"""What each collector fetches and how it writes it: a fetch step and a write step.

The fetch step talks only to the API and returns a :class:`Batch`; the write step talks only
to PostgreSQL, in one transaction (rows + gap detection + the run's ledger row). Keeping
them apart is what lets a collector hold a fetched block in memory while the database is
down, and write it later.

Timestamps are aligned to block boundaries:

* ``5m`` / ``1h``: the block start the API reports (``timestamp`` of the response);
* ``latest``: the collection minute (``align(now, 60)``);
* ``players``: ``align(now, COLLECTOR_INTERVALS["players"])``;
* ``items`` / ``news``: no block (``block_time`` NULL).

Example:
    >>> batch = fetch("5m", client)                         # doctest: +SKIP
    >>> batch.write(conn).rows_written                      # doctest: +SKIP
    4000
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from gept.collectors import gaps
from gept.collectors.runs import RunRecord, record_run
from gept.core.clock import align, utcnow
from gept.core.config import COLLECTOR_INTERVALS, Settings, get_settings
from gept.core.errors import InvalidInput
from gept.db import writer
from gept.market.client import WikiClient

Writer = Callable[[psycopg.Connection[Any], writer.BeforeCommit], writer.WriteResult]


@dataclass
class Batch:
    """Fetched rows waiting to be written, with the run they belong to.

    Attributes:
        run: the run's record (finished by :meth:`write`).
        offered: rows fetched.
        rejected: rows the parser already refused (added to the writer's rejections).
        gap_table: the block table whose gaps this batch detects (5m and 1h only).
    """

    run: RunRecord
    offered: int
    rejected: int
    write_rows: Writer
    gap_table: tuple[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    failed_writes: int = 0
    gap: tuple[datetime, datetime] | None = None
    """The gap recorded before this batch's block by its write, if any."""

    def write(self, conn: psycopg.Connection[Any]) -> RunRecord:
        """Write the rows, detect a gap before the block and record the run: one transaction.

        Raises:
            psycopg.OperationalError: when the connection is lost (the batch is intact and
                can be written again: nothing of it was committed).
        """
        run = self.run
        gap_found: list[tuple[datetime, datetime]] = []
        self.gap = None

        def bookkeeping(c: psycopg.Connection[Any], result: writer.WriteResult) -> None:
            if self.gap_table is not None and run.block_time is not None:
                gap = gaps.detect_before(c, self.gap_table[0], run.block_time,
                                         self.gap_table[1])
                if gap is not None:
                    gap_found.append(gap)
            notes = list(self.notes)
            if gap_found:
                notes.append(f"gap recorded {gap_found[0][0].isoformat()} .. "
                             f"{gap_found[0][1].isoformat()}")
            run.finish("ok", rows_written=result.written,
                       rows_rejected=self.rejected + result.rejected,
                       error="; ".join(notes) or None)
            record_run(c, run)

        self.write_rows(conn, bookkeeping)
        self.gap = gap_found[0] if gap_found else None
        return run


def fetch(name: str, client: WikiClient, *, settings: Settings | None = None,
          now: datetime | None = None) -> Batch:
    """Fetch one run's worth of data for collector ``name``.

    Raises:
        InvalidInput: for an unknown collector name.
        UpstreamError: when the API failed after the client's retries.
    """
    settings = settings or get_settings()
    started = now or utcnow()
    run = RunRecord(name, started_at=started)
    if name in ("5m", "1h"):
        snap = client.five_minute() if name == "5m" else client.hourly()
        table, step = gaps.TABLES[name]
        run.block_time = snap.timestamp
        rows = snap.rows
        return Batch(run, len(rows) + len(snap.rejected), len(snap.rejected),
                     lambda conn, bc: writer.write_price_blocks(conn, table, rows,
                                                                before_commit=bc),
                     gap_table=(table, step),
                     notes=[] if rows else ["the API returned an empty block"])
    if name == "latest":
        latest = client.latest()
        minute = align(started, COLLECTOR_INTERVALS["latest"])
        run.block_time = minute
        rejected = len(client.last_rejected)
        return Batch(run, len(latest) + rejected, rejected,
                     lambda conn, bc: writer.write_latest(conn, minute, latest,
                                                          before_commit=bc))
    if name == "items":
        mapping = client.mapping()
        rejected = len(client.last_rejected)
        return Batch(run, len(mapping) + rejected, rejected,
                     lambda conn, bc: writer.upsert_items(conn, mapping, before_commit=bc))
    if name == "news":
        news = client.news(settings.news_feed_url)
        return Batch(run, len(news), 0,
                     lambda conn, bc: writer.write_news(conn, news, before_commit=bc))
    if name == "players":
        count = client.player_count(settings.players_url)
        block = align(started, COLLECTOR_INTERVALS["players"])
        run.block_time = block
        return Batch(run, 1, 0,
                     lambda conn, bc: writer.write_player_count(conn, block, count,
                                                                before_commit=bc))
    raise InvalidInput(f"unknown collector {name!r}; one of {', '.join(COLLECTOR_INTERVALS)}",
                       field="collector")
