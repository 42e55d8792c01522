"""One inference cycle: gate, lock, load models, predict, write, record, retain.

Every cycle leaves one ``inference_runs`` row (written on its own autocommit connection, so
it survives a failed write): ``running`` → ``completed`` | ``skipped`` | ``failed``.

Example:
    >>> result = run_inference("fallback")                        # doctest: +SKIP
    >>> result.status                                             # doctest: +SKIP
    'skipped'
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from gept.core.clock import align, utcnow
from gept.core.config import get_settings
from gept.core.errors import Failed, GeptError, InvalidInput, Locked
from gept.db import partitions
from gept.db.connect import connect
from gept.inference import batch as batch_io
from gept.inference import failover, retention
from gept.inference.predictor import load_active, predict_block
from gept.registry.history import latest_block

log = logging.getLogger(__name__)
ROLES = ("primary", "fallback")


@dataclass
class RunResult:
    """What a cycle did."""

    run_id: str
    role: str
    status: str                   # completed | skipped | failed
    reason: str = ""
    block_time: str | None = None
    rows_written: int = 0
    items_predicted: int = 0
    model_ids: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    dropped_partitions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def _db_now(conn: psycopg.Connection[Any]) -> datetime:
    """The database's clock: every host stamps batches by the same clock."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now.astimezone(UTC)


def _record_start(meta: psycopg.Connection[Any], run_id: str, role: str) -> None:
    meta.execute("INSERT INTO inference_runs (run_id, role, host, status) "
                 "VALUES (%s, %s, %s, 'running')", (run_id, role, socket.gethostname()))


def _record_end(meta: psycopg.Connection[Any], result: RunResult, error: str | None) -> None:
    meta.execute(
        "UPDATE inference_runs SET status = %s, finished_at = now(), rows_written = %s, "
        "items_predicted = %s, model_ids = %s, block_time = %s, error = %s WHERE run_id = %s",
        (result.status, result.rows_written, result.items_predicted, result.model_ids,
         result.block_time, error, result.run_id))


def run_inference(role: str, *, dsn: str | None = None, models_dir: Path | None = None,
                  stale_after_seconds: int | None = None,
                  retention_days: int | None = None) -> RunResult:
    """Run one cycle as ``primary`` or ``fallback``.

    Raises:
        InvalidInput: for an unknown role.
        Locked: (primary only) another writer holds the lock (exit 4).
        Failed / IntegrityError: no ACTIVE model, a tampered artifact, a failed write.
    """
    if role not in ROLES:
        raise InvalidInput(f"role must be primary or fallback, not {role!r}", field="role")
    settings = get_settings()
    models_dir = models_dir or settings.models_dir
    stale_after = stale_after_seconds if stale_after_seconds is not None else \
        settings.stale_after_seconds
    keep_days = retention_days if retention_days is not None else _retention_days()
    if 0 < keep_days < 3:
        raise InvalidInput("GEPT_PREDICTIONS_RETENTION_DAYS must be 0 (off) or >= 3: a batch "
                           "must outlive its 48 h windows", field="GEPT_PREDICTIONS_RETENTION_DAYS",
                           value=keep_days)
    run_id = f"{utcnow():%Y%m%d_%H%M%S_%f}_{role}_{socket.gethostname()}"[:120]
    result = RunResult(run_id, role, "running")
    with connect(dsn, autocommit=True, attempts=3) as meta:
        _record_start(meta, run_id, role)
        error: str | None = None
        try:
            _cycle(meta, dsn, result, models_dir, stale_after)
        except Locked as exc:
            result.status, result.reason = "skipped", exc.message
            _record_end(meta, result, None)
            raise
        except GeptError as exc:
            result.status, error = "failed", exc.message
            _record_end(meta, result, error[:4000])
            raise
        except Exception as exc:
            result.status, error = "failed", f"{type(exc).__name__}: {exc}"
            _record_end(meta, result, error[:4000])
            raise Failed(f"inference run {run_id} failed: {error}", run_id=run_id) from exc
        _record_end(meta, result, None)
        if result.status == "completed" and keep_days > 0:
            try:
                result.dropped_partitions = retention.drop_old_partitions(meta,
                                                                          keep_days=keep_days)
            except psycopg.Error as exc:  # retention must never fail a written batch
                log.warning("retention skipped: %s", exc)
    return result


def _retention_days() -> int:
    return get_settings().predictions_retention_days


def _cycle(meta: psycopg.Connection[Any], dsn: str | None, result: RunResult,
           models_dir: Path, stale_after: int) -> None:
    started = time.monotonic()
    if result.role == "fallback":
        fresh, age = failover.is_fresh(meta, stale_after)
        if fresh:
            result.status = "skipped"
            result.reason = (f"newest batch is {age:.0f} s old (< {stale_after} s): "
                             "the primary is writing")
            return
    block = latest_block(meta)
    if block is None:
        raise Failed("price_data_5min is empty: nothing to predict from")
    result.block_time = block.isoformat()
    # The batch is stamped with its publication block (the database clock aligned down to
    # 5 minutes), not with the older price block it predicts from: the Wiki publishes a
    # block minutes after it closes, so stamping the price block would make every batch
    # look 5-15 minutes old and the 10-minute staleness rule (engine, fallback, checks,
    # alerts) would flap. Data age is guarded separately below.
    published = align(_db_now(meta), 300)
    data_age = (published - block).total_seconds()
    max_age = get_settings().max_data_age_seconds
    if data_age > max_age:
        raise Failed(
            f"the newest price block ({block.isoformat()}) is {data_age:.0f} s old "
            f"(> {max_age} s): refusing to publish predictions from stale prices; "
            "check the collectors (gept runbook run triage-collectors)",
            block_time=block.isoformat(), data_age_seconds=data_age)
    # Partitions before the write transaction: creating one locks the parent table, which
    # must not be held for the whole write.
    partitions.ensure(meta, "predictions", published, published + timedelta(days=1))
    with connect(dsn, attempts=3) as work, work.transaction():
        if not failover.try_lock(work):
            if result.role == "fallback":
                result.status, result.reason = "skipped", "another writer holds the lock"
                return
            raise Locked("another inference run (primary or fallback, any host) is writing; "
                         "this cycle is skipped", lock_key=failover.LOCK_KEY)
        if result.role == "fallback":
            fresh, age = failover.is_fresh(work, stale_after)
            if fresh:
                result.status = "skipped"
                result.reason = f"a batch was committed {age:.0f} s ago while waiting"
                return
        if failover.block_written(work, published):
            result.status = "skipped"
            result.reason = f"block {published.isoformat()} already has a batch"
            return
        t0 = time.monotonic()
        models = load_active(work, models_dir)
        t1 = time.monotonic()
        batch, _ = predict_block(work, models, block)
        batch.time = published
        t2 = time.monotonic()
        rows = batch_io.write(work, batch, run_id=result.run_id, role=result.role)
        t3 = time.monotonic()
    t4 = time.monotonic()
    result.status = "completed"
    result.rows_written = rows
    result.items_predicted = batch.items
    result.model_ids = batch.model_ids
    result.timings = {"load_models": round(t1 - t0, 3), "predict": round(t2 - t1, 3),
                      "write": round(t3 - t2, 3), "commit": round(t4 - t3, 3),
                      "total": round(t4 - started, 3)}
