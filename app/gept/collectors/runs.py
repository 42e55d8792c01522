"""The ``collector_runs`` ledger: one row per collector run, read by the status page.

A successful run's row is written in the same transaction as its data, so "the run says ok"
and "the rows are there" are never out of step. A failed run's row is written on its own,
best effort (the database may be the thing that failed).

Example:
    >>> rec = RunRecord("5m", started_at=utcnow())                    # doctest: +SKIP
    >>> rec.finish("ok", rows_written=4000); record_run(conn, rec)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import psycopg

from gept.core.clock import utcnow
from gept.core.config import COLLECTOR_INTERVALS

RunStatus = Literal["running", "ok", "failed", "skipped"]
COLLECTORS: tuple[str, ...] = tuple(COLLECTOR_INTERVALS)
"""Every collector, in the order the status page lists them."""
MAX_ERROR_CHARS = 2000


@dataclass
class RunRecord:
    """One collector run, as stored in ``collector_runs``.

    Attributes:
        collector: ``5m``, ``latest``, ``1h``, ``items``, ``news`` or ``players``.
        started_at: when the run began (UTC).
        block_time: the block collected (5m/1h: the API's block; latest: the minute).
        status: ``ok``, ``failed`` or ``skipped`` once finished.
        rows_written: rows that were new.
        rows_rejected: rows refused (by the parser or the writer).
        error: why the run failed, or a note (for example a late write after an outage).
    """

    collector: str
    started_at: datetime = field(default_factory=utcnow)
    block_time: datetime | None = None
    finished_at: datetime | None = None
    status: RunStatus = "running"
    rows_written: int = 0
    rows_rejected: int = 0
    error: str | None = None

    def finish(self, status: RunStatus, *, rows_written: int = 0, rows_rejected: int = 0,
               error: str | None = None, at: datetime | None = None) -> RunRecord:
        """Mark the run finished (returns self)."""
        self.status = status
        self.rows_written = rows_written
        self.rows_rejected = rows_rejected
        self.error = error[:MAX_ERROR_CHARS] if error else None
        self.finished_at = at or utcnow()
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO strings)."""
        return {
            "collector": self.collector,
            "status": self.status,
            "block_time": self.block_time.isoformat() if self.block_time else None,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "error": self.error,
        }


def record_run(conn: psycopg.Connection[Any], rec: RunRecord) -> None:
    """Insert the run's row (inside the caller's transaction, if any)."""
    conn.execute(
        "INSERT INTO collector_runs (collector, block_time, started_at, finished_at, status, "
        "rows_written, rows_rejected, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (rec.collector, rec.block_time, rec.started_at, rec.finished_at or utcnow(),
         rec.status, rec.rows_written, rec.rows_rejected, rec.error))


@dataclass(frozen=True)
class CollectorTotals:
    """All-time counts of one collector, for the Prometheus metrics derived from the ledger."""

    collector: str
    runs: int
    failures: int
    rows_written: int
    last_success: datetime | None


def totals(conn: psycopg.Connection[Any]) -> dict[str, CollectorTotals]:
    """Runs, failures, rows and the last success of every collector (all 6, zeros if none)."""
    rows = conn.execute(
        "SELECT collector, count(*), count(*) FILTER (WHERE status = 'failed'), "
        "coalesce(sum(rows_written), 0), max(finished_at) FILTER (WHERE status = 'ok') "
        "FROM collector_runs GROUP BY collector").fetchall()
    found = {str(r[0]): CollectorTotals(str(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4])
             for r in rows}
    return {name: found.get(name, CollectorTotals(name, 0, 0, 0, None))
            for name in (*COLLECTORS, *sorted(set(found) - set(COLLECTORS)))}


@dataclass(frozen=True)
class CollectorState:
    """What the status page shows for one collector."""

    collector: str
    interval_seconds: int
    last_run: RunRecord | None
    last_success_at: datetime | None
    last_success_rows: int
    runs_24h: int
    failures_24h: int
    rows_24h: int
    now: datetime

    @property
    def age_seconds(self) -> float | None:
        """Seconds since the last successful run (None: never succeeded)."""
        if self.last_success_at is None:
            return None
        return max(0.0, (self.now - self.last_success_at).total_seconds())

    @property
    def stale(self) -> bool:
        """Older than twice its interval (or never succeeded): shown red."""
        age = self.age_seconds
        return age is None or age > 2 * self.interval_seconds

    @property
    def state(self) -> str:
        """``ok``, ``stale``, ``failing`` (fresh, but the newest run failed) or ``never``."""
        if self.last_success_at is None:
            return "never"
        if self.stale:
            return "stale"
        if self.last_run is not None and self.last_run.status == "failed":
            return "failing"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as served at ``/status.json``."""
        age = self.age_seconds
        return {
            "collector": self.collector,
            "state": self.state,
            "stale": self.stale,
            "interval_seconds": self.interval_seconds,
            "stale_after_seconds": 2 * self.interval_seconds,
            "age_seconds": None if age is None else round(age, 1),
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at
            else None,
            "last_success_rows": self.last_success_rows,
            "last_run": self.last_run.to_dict() if self.last_run else None,
            "runs_24h": self.runs_24h,
            "failures_24h": self.failures_24h,
            "rows_24h": self.rows_24h,
        }


def states(conn: psycopg.Connection[Any], now: datetime | None = None
           ) -> list[CollectorState]:
    """The state of every collector, from the ledger (three small indexed queries)."""
    now = now or utcnow()
    latest = {str(r[0]): RunRecord(str(r[0]), r[2], r[1], r[3], r[4], int(r[5]), int(r[6]),
                                   r[7])
              for r in conn.execute(
        "SELECT DISTINCT ON (collector) collector, block_time, started_at, finished_at, "
        "status, rows_written, rows_rejected, error FROM collector_runs "
        "ORDER BY collector, started_at DESC, id DESC").fetchall()}
    success = {str(r[0]): (r[1], int(r[2])) for r in conn.execute(
        "SELECT DISTINCT ON (collector) collector, finished_at, rows_written "
        "FROM collector_runs WHERE status = 'ok' "
        "ORDER BY collector, finished_at DESC, id DESC").fetchall()}
    day = {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in conn.execute(
        "SELECT collector, count(*), count(*) FILTER (WHERE status = 'failed'), "
        "coalesce(sum(rows_written), 0) FROM collector_runs "
        "WHERE started_at > %s - interval '24 hours' GROUP BY collector", (now,)).fetchall()}
    out = []
    for name in COLLECTORS:
        last_ok = success.get(name)
        runs, fails, rows = day.get(name, (0, 0, 0))
        out.append(CollectorState(
            collector=name, interval_seconds=COLLECTOR_INTERVALS[name],
            last_run=latest.get(name), last_success_at=last_ok[0] if last_ok else None,
            last_success_rows=last_ok[1] if last_ok else 0, runs_24h=runs,
            failures_24h=fails, rows_24h=rows, now=now))
    return out
