"""Who may write a batch: the advisory lock, the freshness gate, the one-batch-per-block rule.

- Primary (Hydra) and fallback (Ampere) both run every 5 minutes. Whoever writes first
  holds ``pg_try_advisory_xact_lock(LOCK_KEY)`` for the whole write transaction, on the one
  database both hosts write to — so the lock is mutually exclusive across hosts, unlike the
  host-local ``flock`` production used. The lock is released by commit or rollback, so a
  crashed run can never leave it held.
- The fallback writes only when the newest batch is older than ``GEPT_STALE_AFTER_SECONDS``
  (age measured with the database's clock: hosts' clocks may disagree). It checks before
  taking the lock (cheap exit) and again under the lock.
- A block that already has a batch is skipped; the ``prediction_batches`` primary key makes
  a second write of the same block impossible even if the checks above were bypassed.

Example:
    >>> with conn.transaction():                                  # doctest: +SKIP
    ...     if try_lock(conn): ...
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

LOCK_KEY = 0x6765_7074_696E  # "geptin": one key for every inference writer, on any host


def try_lock(conn: psycopg.Connection[Any]) -> bool:
    """Take the inference write lock for the current transaction (False if held)."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def newest_batch_age(conn: psycopg.Connection[Any]) -> float | None:
    """Seconds since the newest batch was committed (None when there is none)."""
    row = conn.execute("SELECT extract(epoch FROM now() - max(created_at)) "
                       "FROM prediction_batches").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def is_fresh(conn: psycopg.Connection[Any], stale_after_seconds: int) -> tuple[bool, float | None]:
    """(fresh, age): fresh when the newest batch is younger than the threshold."""
    age = newest_batch_age(conn)
    return age is not None and age < stale_after_seconds, age


def block_written(conn: psycopg.Connection[Any], block: datetime) -> bool:
    """True when ``block`` already has a batch."""
    return conn.execute('SELECT 1 FROM prediction_batches WHERE "time" = %s',
                        (block,)).fetchone() is not None
