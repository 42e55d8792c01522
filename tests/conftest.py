"""Session fixtures: a real PostgreSQL server, fresh migrated databases per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import psycopg
import pytest

from gept.core.config import get_settings
from gept.db import partitions
from gept.db.migrate import migrate
from gept.testing.pgserver import PgServer

_counter = itertools.count()
_BY_DIRECTORY = {"integration": pytest.mark.integration, "lab": pytest.mark.lab}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its directory: ``-m "not lab"`` is the fast loop (``make check``)."""
    for item in items:
        parts = item.path.parts
        below = parts[parts.index("tests") + 1] if "tests" in parts[:-1] else ""
        if below in _BY_DIRECTORY:
            item.add_marker(_BY_DIRECTORY[below])


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own state dir, audit trail and a valid User-Agent; settings are
    re-read. (The trail is redirected through the Python API: no variable can do that.)"""
    from gept.guards import audit

    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("GEPT_STATE_DIR", str(state))
    monkeypatch.setenv("GEPT_WIKI_USER_AGENT",
                       os.environ.get("GEPT_WIKI_USER_AGENT", "gept-tests/0.1 (ops@example.org)"))
    audit.use_file(state / "audit.jsonl")
    get_settings.cache_clear()
    yield
    audit.use_file(None)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL 15 for the whole session, with a migrated template database."""
    server = PgServer.start(memory=True)
    dsn = server.create_database("gept_template")
    with psycopg.connect(dsn) as conn:
        migrate(conn)
    partitions.forget_cache()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def db_dsn(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database with the full schema; also exported as GEPT_DATABASE_URL.

    Dropped after the test: the server is in RAM (hundreds of tests each make one)."""
    partitions.forget_cache()
    name = f"t{os.getpid()}_{next(_counter)}"
    dsn = pg_server.create_database(name, template="gept_template")
    monkeypatch.setenv("GEPT_DATABASE_URL", dsn)
    get_settings.cache_clear()
    yield dsn
    pg_server.drop_database(name)


@pytest.fixture
def empty_dsn(pg_server: PgServer) -> Iterator[str]:
    """A fresh database with no schema at all (dropped after the test)."""
    partitions.forget_cache()
    name = f"e{os.getpid()}_{next(_counter)}"
    yield pg_server.create_database(name)
    pg_server.drop_database(name)
