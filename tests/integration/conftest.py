"""Integration fixtures: a trained template database (one per session, copied per test)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlseed import make_trained_template

from gept.core.config import get_settings
from gept.db import partitions
from gept.testing.pgserver import PgServer

_n = itertools.count()


@pytest.fixture(scope="session")
def trained(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One trained template database for the session (seeding and training it takes 15-20 s;
    every test gets its own copy, `ml_dsn`)."""
    return make_trained_template(pg_server, tmp_path_factory.mktemp("ml"),
                                 f"ml_{os.getpid()}_{next(_n)}")


@pytest.fixture
def ml_dsn(trained: tuple[str, Path], pg_server: PgServer,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    template, models = trained
    partitions.forget_cache()
    name = f"inf{os.getpid()}_{next(_n)}"
    dsn = pg_server.create_database(name, template=template)
    monkeypatch.setenv("GEPT_DATABASE_URL", dsn)
    monkeypatch.setenv("GEPT_MODELS_DIR", str(models))
    monkeypatch.setenv("GEPT_STALE_AFTER_SECONDS", "600")
    get_settings.cache_clear()
    yield dsn
    partitions.forget_cache()
    pg_server.drop_database(name)
