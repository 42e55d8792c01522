"""Fixtures for the engine against a real PostgreSQL: a seeded market and a running app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from engine_seed import (
    API_KEY,
    ITEMS,
    ClientFactory,
    Row,
    market_rows,
    seed_batch,
    seed_items,
    seed_model,
    seed_volume,
)
from fastapi.testclient import TestClient

from gept.core.clock import align, utcnow
from gept.core.config import Settings, get_settings
from gept.engine.main import create_app


@pytest.fixture
def engine_env(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine's environment: API key, fresh database, generous rate limit."""
    monkeypatch.setenv("GEPT_ENGINE_API_KEY", API_KEY)
    monkeypatch.setenv("GEPT_ENGINE_RATE_LIMIT_PER_MINUTE", "100000")
    get_settings.cache_clear()
    return db_dsn


@pytest.fixture
def batch_time() -> datetime:
    """A fresh batch time (the current 5-minute block)."""
    return align(utcnow(), 300)


@pytest.fixture
def market(engine_env: str, batch_time: datetime) -> list[Row]:
    """Items, an ACTIVE model, 24 h volumes and one fresh batch; returns the batch's rows."""
    rows = market_rows()
    with psycopg.connect(engine_env) as conn:
        seed_items(conn, [(i, n, lim) for i, n, lim, *_ in ITEMS])
        seed_volume(conn, batch_time, {i: vol for i, _, _, vol, *_ in ITEMS})
        seed_model(conn)
        seed_batch(conn, batch_time, rows, names={i: n for i, n, *_ in ITEMS})
    return rows


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Start an engine app (lifespan included) with the current environment."""
    opened: list[TestClient] = []

    def factory(**settings: Any) -> TestClient:
        get_settings.cache_clear()
        app = create_app(Settings(**settings) if settings else None, refresh_interval=0.2)
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield factory
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(market: list[Row], make_client: ClientFactory) -> TestClient:
    """An engine serving the seeded market."""
    return make_client()


@pytest.fixture
def web(ml_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """An engine serving a real predictions batch of a trained model (the contract tests)."""
    from gept.inference.runner import run_inference

    monkeypatch.setenv("GEPT_ENGINE_API_KEY", API_KEY)
    monkeypatch.setenv("GEPT_ENGINE_RATE_LIMIT_PER_MINUTE", "100000")
    monkeypatch.setenv("GEPT_PRICE_DROP_MONITOR_INTERVAL", "0")
    get_settings.cache_clear()
    result = run_inference("primary")
    assert result.status == "completed"
    with psycopg.connect(ml_dsn) as conn:  # what the /mapping collector stores
        conn.execute("UPDATE items SET icon = name || '.png'")
    with TestClient(create_app(refresh_interval=0.2)) as client:
        yield client
