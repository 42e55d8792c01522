"""Running a collector: once, or in a loop on its interval, surviving a database outage.

Each run fetches (the client retries the API), then writes every batch still waiting, oldest
first. When PostgreSQL is unreachable the write is retried with backoff; if it stays down,
the batch stays in memory (a bounded queue per collector) and is written by a later run, in
order, so no block is lost and no false gap is recorded. If the queue overflows, the oldest
batch is dropped — and because the next block written finds a hole before it, the gap is
recorded in ``data_quality``. A short gap (up to ``AUTO_BACKFILL_BLOCKS``) is then backfilled
by the collector at once; a longer one by ``gept collect gaps --repair``.

The loop sleeps until the next interval boundary (intervals come only from
``gept.core.config.COLLECTOR_INTERVALS``), stops cleanly on SIGTERM/SIGINT, and can be
bounded by run count and wall time.

Example:
    >>> runner = CollectorRunner("5m", client=client)       # doctest: +SKIP
    >>> runner.run_once().status                             # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import Any

import psycopg

from gept.collectors.jobs import Batch, fetch
from gept.collectors.metrics import CollectorMetrics
from gept.collectors.runs import RunRecord, record_run
from gept.core.clock import utcnow
from gept.core.config import COLLECTOR_INTERVALS, Settings, get_settings
from gept.core.errors import DatabaseError, GeptError, InvalidInput
from gept.db.connect import connect
from gept.market.client import WikiClient

log = logging.getLogger(__name__)

MAX_PENDING: dict[str, int] = {"5m": 36, "1h": 6, "latest": 30, "players": 12, "items": 1,
                               "news": 1}
"""Batches kept in memory per collector while the database is down (5m: 3 hours; items and
news: only the newest matters)."""
AUTO_BACKFILL_BLOCKS = 12
"""A gap this short (one hour of 5-minute blocks) is backfilled by the collector itself as
soon as it is recorded; longer ones wait for ``gept collect gaps --repair``."""
START_LAG: dict[str, float] = {"5m": 15.0, "1h": 30.0}
"""Seconds after a block boundary before fetching it: the wiki publishes a block a few seconds
after it ends. Not an interval: it only shifts when, within the interval, a run starts."""


class CollectorRunner:
    """One collector: fetch, validate, write, record, in a bounded, restartable loop.

    Args:
        name: the collector (a key of ``COLLECTOR_INTERVALS``).
        client: the API client.
        dsn: the database (None: the configured one).
        metrics: live Prometheus metrics (None: none).
        db_attempts: tries per write before keeping the batch for later.
        db_delay: first wait between tries; doubles each time (capped at 30 s).
        settings: configuration (None: the process settings).
    """

    def __init__(self, name: str, client: WikiClient, *, dsn: str | None = None,
                 metrics: CollectorMetrics | None = None, db_attempts: int = 3,
                 db_delay: float = 1.0, settings: Settings | None = None,
                 max_pending: int | None = None, auto_backfill: bool = True) -> None:
        if name not in COLLECTOR_INTERVALS:
            raise InvalidInput(f"unknown collector {name!r}; one of "
                               f"{', '.join(COLLECTOR_INTERVALS)}", field="collector")
        self.name = name
        self.interval = COLLECTOR_INTERVALS[name]
        self.client = client
        self.dsn = dsn
        self.metrics = metrics
        self.db_attempts = max(1, db_attempts)
        self.db_delay = db_delay
        self.settings = settings or get_settings()
        self.pending: deque[Batch] = deque()
        self.max_pending = max_pending or MAX_PENDING.get(name, 1)
        self.dropped = 0
        self.auto_backfill = auto_backfill
        self.stopping = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None

    # -- database ------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.dsn, autocommit=True)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _with_db(self, func: Callable[[psycopg.Connection[Any]], Any], what: str) -> Any:
        """Run ``func`` on a live connection; reconnect and retry on a lost connection."""
        last: Exception | None = None
        for attempt in range(1, self.db_attempts + 1):
            try:
                return func(self._connection())
            except (psycopg.OperationalError, DatabaseError) as exc:
                last = exc
                self._drop_connection()
                if attempt < self.db_attempts and not self.stopping.is_set():
                    wait = min(30.0, self.db_delay * 2 ** (attempt - 1))
                    log.warning("%s: %s: database unavailable (attempt %d/%d), retrying in "
                                "%.1f s", self.name, what, attempt, self.db_attempts, wait)
                    self.stopping.wait(wait)
        raise DatabaseError(f"{what}: PostgreSQL unavailable after {self.db_attempts} "
                            f"attempts: {str(last).strip()}")

    def close(self) -> None:
        """Close the database connection (pending batches are kept)."""
        self._drop_connection()

    # -- one run -------------------------------------------------------------------------

    def run_once(self) -> RunRecord:
        """Fetch one batch, then write everything pending; return this run's record."""
        run = RunRecord(self.name, started_at=utcnow())
        try:
            batch = fetch(self.name, self.client, settings=self.settings, now=run.started_at)
        except GeptError as exc:
            run.finish("failed", error=exc.message)
            log.error("%s: fetch failed: %s", self.name, exc.message)
            self._observe(run)
            self._record_failure(run)
            try:
                self._flush()  # the API is down, maybe the database is back: old batches
            except DatabaseError as db_exc:
                log.error("%s: %s", self.name, db_exc.message)
            return run
        run = batch.run
        self._enqueue(batch)
        try:
            self._flush()
        except DatabaseError as exc:
            waiting = len(self.pending)
            run.finish("failed", error=f"{exc.message}; {waiting} batch(es) kept in memory")
            log.error("%s: %s", self.name, run.error)
        self._observe(run)
        return run

    def _enqueue(self, batch: Batch) -> None:
        if len(self.pending) >= self.max_pending:
            lost = self.pending.popleft()
            self.dropped += 1
            log.error("%s: database down too long; dropped the batch of %s (block %s): the "
                      "gap will be recorded and can be backfilled", self.name,
                      lost.run.started_at.isoformat(),
                      lost.run.block_time.isoformat() if lost.run.block_time else "-")
        self.pending.append(batch)

    def _flush(self) -> None:
        """Write pending batches oldest first; stop at the first database failure."""
        while self.pending:
            batch = self.pending[0]
            if batch.failed_writes:
                late = (utcnow() - batch.run.started_at).total_seconds()
                batch.notes[:] = [n for n in batch.notes if "database outage" not in n]
                batch.notes.append(f"written {late:.0f} s late after a database outage")
            try:
                self._with_db(batch.write, f"write {self.name} batch")
            except DatabaseError:
                batch.failed_writes += 1
                raise
            except psycopg.Error as exc:
                # The database answered and refused this batch (not a lost connection):
                # retrying it would block every later batch, so it is recorded and dropped.
                self.pending.popleft()
                self.dropped += 1
                batch.run.finish("failed", error=f"database refused the batch: "
                                 f"{type(exc).__name__}: {str(exc).strip()}")
                log.error("%s: %s", self.name, batch.run.error)
                self._record_failure(batch.run)
                continue
            self.pending.popleft()
            if self.metrics is not None and batch.run is not None:
                self.metrics.observe_write(batch.run.rows_written, time.time())
            if batch.gap is not None and self.auto_backfill:
                self._repair(batch.gap)
            log.info("%s: block %s: %d new rows, %d rejected", self.name,
                     batch.run.block_time.isoformat() if batch.run.block_time else "-",
                     batch.run.rows_written, batch.run.rows_rejected)

    def _repair(self, gap: tuple[datetime, datetime]) -> None:
        """Backfill a short gap right away (a long one is left to ``gaps --repair``)."""
        from gept.collectors.backfill import backfill

        blocks = int((gap[1] - gap[0]).total_seconds()) // self.interval
        if blocks > AUTO_BACKFILL_BLOCKS:
            log.warning("%s: gap of %d blocks from %s left for `gept collect gaps --repair`",
                        self.name, blocks, gap[0].isoformat())
            return
        try:
            report = backfill(self.dsn, self.client, self.name, gap[0], gap[1],
                              db_attempts=1)
            log.info("%s: gap %s .. %s backfilled: %d rows, %s", self.name,
                     gap[0].isoformat(), gap[1].isoformat(), report.rows_written,
                     report.gaps or "no gap row")
        except (GeptError, psycopg.Error) as exc:
            log.warning("%s: backfilling the gap from %s failed (it stays recorded): %s",
                        self.name, gap[0].isoformat(), exc)

    def _observe(self, run: RunRecord) -> None:
        if self.metrics is not None:
            self.metrics.observe_run(ok=run.status == "ok")

    def _record_failure(self, run: RunRecord) -> None:
        """Best effort: a failed run is recorded if the database answers at once."""
        try:
            conn = self._connection()
            with conn.transaction():
                record_run(conn, run)
        except (psycopg.Error, DatabaseError) as exc:
            self._drop_connection()
            log.warning("%s: could not record the failed run: %s", self.name, exc)

    # -- the loop ------------------------------------------------------------------------

    def next_due(self, now: float) -> float:
        """The next run time: the next interval boundary plus the publishing lag."""
        lag = START_LAG.get(self.name, 0.0)
        base = now - now % self.interval
        due = base + lag
        return due if due > now else due + self.interval

    def stop(self, *_: Any) -> None:
        """Ask the loop to finish after the current run (signal handler)."""
        self.stopping.set()

    def loop(self, *, max_runs: int | None = None, max_seconds: float | None = None,
             install_signals: bool = True) -> list[RunRecord]:
        """Run now, then at every interval until stopped or a bound is reached.

        Returns the records of the runs made.
        """
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        deadline = time.monotonic() + max_seconds if max_seconds is not None else None
        records: list[RunRecord] = []
        log.info("%s collector: every %d s", self.name, self.interval)
        try:
            while not self.stopping.is_set():
                try:
                    records.append(self.run_once())
                except Exception as exc:  # a collector outlives one bad run
                    log.exception("%s: run crashed", self.name)
                    crashed = RunRecord(self.name).finish(
                        "failed", error=f"{type(exc).__name__}: {exc}")
                    self._observe(crashed)
                    records.append(crashed)
                if max_runs is not None and len(records) >= max_runs:
                    break
                wait = self.next_due(time.time()) - time.time()
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                if wait > 0 and self.stopping.wait(wait):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self.close()
            if self.pending:
                log.error("%s: stopping with %d unwritten batch(es); their blocks will show "
                          "as gaps and can be backfilled", self.name, len(self.pending))
        return records

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s: signal %d, finishing the current run", self.name, signum)
        self.stopping.set()
