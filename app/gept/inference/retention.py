"""Retention of predictions: drop whole daily partitions, never delete rows.

What must be kept (and why the default is 3 days):

- the engine serves only the newest batch;
- calibration compares a prediction with what happened in its window, so a batch must
  live at least as long as the longest window (48 h) plus the time to evaluate it;
- 4,000 items × 108 targets every 5 minutes is ~124M rows (~25 GB) a day; at the
  production size (~400 items) ~12M rows (~2.5 GB) a day.

So predictions are kept for ``GEPT_PREDICTIONS_RETENTION_DAYS`` (default 3: today plus two
full days, i.e. always ≥ 48 h of every batch). Older daily partitions are detached
``CONCURRENTLY`` (readers are not blocked) and dropped. Long-term calibration history belongs
in a compact outcomes table, not in raw predictions.

Example:
    >>> with connect(autocommit=True) as conn:                   # doctest: +SKIP
    ...     drop_old_partitions(conn, keep_days=3)
    ['predictions_p20260101']
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from gept.core.clock import utcnow
from gept.core.errors import InvalidInput

log = logging.getLogger(__name__)
_PART = re.compile(r"^predictions_p(\d{8})$")


def drop_old_partitions(conn: psycopg.Connection[Any], *, keep_days: int,
                        now: datetime | None = None) -> list[str]:
    """Drop predictions partitions whose whole day is older than ``keep_days`` days.

    ``conn`` must be in autocommit mode (DETACH ... CONCURRENTLY cannot run in a
    transaction). Batch rows of dropped days are removed from ``prediction_batches``.

    Raises:
        InvalidInput: when ``keep_days`` < 3 (calibration needs 48 h windows to complete).
    """
    if keep_days < 3:
        raise InvalidInput("predictions retention must be at least 3 days (48 h windows "
                           "must complete before a batch may go)", field="keep_days",
                           value=keep_days)
    owner = conn.execute("SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
                         "WHERE oid = 'predictions'::regclass").fetchone()
    if owner is not None and not owner[0]:
        # A service role (gept_inference) does not own predictions, so it cannot drop
        # partitions itself: the owner's SECURITY DEFINER function does, on the database's
        # clock, refusing keep_days < 3 (gept.db.roles says why retention lives here).
        names = [str(r[0]) for r in conn.execute(
            "SELECT public.gept_drop_old_predictions(%s)", (keep_days,)).fetchall()]
        from gept.db import partitions

        partitions.forget_cache()
        for name in names:
            log.info("dropped predictions partition %s", name)
        return names
    now = now or utcnow()
    cutoff = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=keep_days - 1)
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'predictions'::regclass ORDER BY 1").fetchall()
    dropped = []
    for (name,) in rows:
        match = _PART.match(str(name))
        if match is None:
            continue
        day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
        if day + timedelta(days=1) > cutoff:
            continue
        conn.execute(sql.SQL("ALTER TABLE predictions DETACH PARTITION {} CONCURRENTLY")
                     .format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
        dropped.append(str(name))
        log.info("dropped predictions partition %s", name)
    if dropped:
        conn.execute('DELETE FROM prediction_batches WHERE "time" < %s', (cutoff,))
    from gept.db import partitions

    partitions.forget_cache()  # a dropped day must be re-created if ever written again
    return dropped
