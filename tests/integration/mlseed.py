"""A database with simulator history and one ACTIVE model, shared by the inference and
failover tests (the fixtures `trained` and `ml_dsn` are in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg

from gept.db import partitions
from gept.testing.history import seed_recent
from gept.testing.pgserver import PgServer
from gept.training.config import TrainingSettings, resolve
from gept.training.trainer import run_training

ITEMS = 8


def make_trained_template(pg_server: PgServer, tmp: Path, name: str) -> tuple[str, Path]:
    """A database with 10 days of simulator history and one ACTIVE global model."""
    models = tmp / "models"
    os.environ.setdefault("GEPT_STATE_DIR", str(tmp / "state"))
    partitions.forget_cache()
    dsn = pg_server.create_database(name, template="gept_template")
    with psycopg.connect(dsn, autocommit=True) as conn:
        seed_recent(conn, items=ITEMS, days=10, seed=5)
        cfg = resolve(TrainingSettings(), task_type="CPU", items=ITEMS, days=10,
                      iterations=12, min_auc=0.5)
        result = run_training(conn, cfg, models_dir=models, promote=True)
    assert result["models"][0]["status"] == "ACTIVE", result
    partitions.forget_cache()
    return name, models


def one(dsn: str, query: str, *args: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, args).fetchone()
    return None if row is None else row[0]
