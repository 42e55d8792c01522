"""Fixtures for the engine against a real PostgreSQL: a seeded market and a running app."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import psycopg
import pytest
from engine_seed import Row, seed_batch, seed_items, seed_model, seed_volume
from fastapi.testclient import TestClient

from gept.core.clock import align, utcnow
from gept.core.config import Settings, get_settings
from gept.engine.main import create_app

API_KEY = "test-engine-key-0123456789abcdef"
HEADERS = {"X-API-Key": API_KEY}

# (item_id, name, buy_limit, 24 h volume, buy price, sell price at 1.25 % offset)
ITEMS: list[tuple[int, str, int | None, int, int, int]] = [
    (101, "Cheap bones", 10_000, 10_000_000, 100, 104),
    (102, "Abyssal whip", 70, 50_000, 1_500_000, 1_560_000),
    (103, "Rare thing", 1_000, 100, 10_000, 10_400),       # volume caps at 5
    (104, "Limited rune", 3, 1_000_000, 2_000, 2_080),     # buy limit 3
    (105, "Tax trap", 10_000, 1_000_000, 50, 51),          # zero profit after tax
    (106, "Nameless limit", None, 1_000, 5_000, 5_200),    # no buy limit: volume caps at 50
]
WINDOWS = (1, 2, 4, 8, 12, 16, 24)
OFFSETS = (0.0125, 0.015, 0.0175, 0.02, 0.0225)


def market_rows(seed: int = 7) -> list[Row]:
    """A grid of configurations per item with varied fill probabilities and EVs."""
    rng = random.Random(seed)
    rows = []
    for item_id, _, _, _, buy, sell in ITEMS:
        for hours in WINDOWS:
            for offset in OFFSETS:
                rows.append(Row(item_id, hours, offset,
                                fill_probability=round(rng.uniform(0.02, 0.6), 4),
                                expected_value=round(rng.uniform(0.001, 0.03), 5),
                                buy_price=buy, sell_price=sell,
                                confidence=rng.choice(["low", "medium", "high"])))
    return rows


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


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Start an engine app (lifespan included) with the current environment."""
    opened: list[TestClient] = []

    def factory(**settings: object) -> TestClient:
        get_settings.cache_clear()
        app = create_app(Settings(**settings) if settings else None,  # type: ignore[arg-type]
                         refresh_interval=0.2)
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


def older(batch: datetime, minutes: int) -> datetime:
    """A batch time ``minutes`` before ``batch``."""
    return batch - timedelta(minutes=minutes)
