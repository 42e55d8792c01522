"""Connections to PostgreSQL (psycopg 3): one-off connections with retry, and pools.

Example:
    >>> with connect() as conn:                      # doctest: +SKIP
    ...     conn.execute("SELECT 1").fetchone()
    (1,)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from gept.core.config import get_settings
from gept.core.errors import DatabaseError

log = logging.getLogger(__name__)
T = TypeVar("T")


def dsn_or_default(dsn: str | None) -> str:
    """The given DSN, or the configured one (with its password file applied)."""
    return dsn if dsn is not None else get_settings().db_dsn()


def connect(dsn: str | None = None, *, autocommit: bool = False,
            attempts: int = 1, delay: float = 1.0) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection, retrying ``attempts`` times on connection failures.

    Raises:
        DatabaseError: when PostgreSQL stays unreachable.
    """
    target = dsn_or_default(dsn)
    timeout = int(get_settings().db_connect_timeout)
    last: Exception | None = None
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return psycopg.connect(target, autocommit=autocommit, connect_timeout=timeout)
        except psycopg.OperationalError as exc:
            last = exc
            if attempt < attempts:
                log.warning("database unreachable (attempt %d/%d): %s", attempt, attempts,
                            str(exc).strip())
                time.sleep(min(30.0, delay * 2 ** (attempt - 1)))
    raise DatabaseError(f"PostgreSQL unreachable: {str(last).strip()}") from last


def pool(dsn: str | None = None, *, min_size: int | None = None,
         max_size: int | None = None) -> ConnectionPool:
    """A connection pool that reconnects after PostgreSQL restarts (checks on checkout)."""
    settings = get_settings()
    return ConnectionPool(
        dsn_or_default(dsn),
        min_size=min_size if min_size is not None else settings.db_pool_min,
        max_size=max_size if max_size is not None else settings.db_pool_max,
        check=ConnectionPool.check_connection,
        open=True,
        kwargs={"connect_timeout": int(settings.db_connect_timeout)},
    )


def with_retry(func: Callable[[], T], *, attempts: int = 5, delay: float = 1.0,
               what: str = "database operation") -> T:
    """Run ``func``; on a lost connection wait and retry (the whole unit of work)."""
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except (psycopg.OperationalError, DatabaseError) as exc:
            if attempt == attempts:
                raise DatabaseError(f"{what} failed after {attempts} attempts: {exc}") from exc
            log.warning("%s: connection lost (attempt %d/%d): %s", what, attempt, attempts, exc)
            time.sleep(min(30.0, delay * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")
