"""`gept train` against a real PostgreSQL with simulator history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gept.core.errors import Failed, InvalidInput
from gept.registry import artifacts
from gept.testing.history import seed_recent
from gept.training.config import TrainConfig, TrainingSettings, resolve
from gept.training.trainer import run_training

ITEMS = 6


@pytest.fixture
def history_dsn(db_dsn: str) -> str:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        seed_recent(conn, items=ITEMS, days=10, seed=11)
    return db_dsn


def cfg(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"task_type": "CPU", "items": ITEMS, "days": 10,
                               "iterations": 8, "min_auc": 0.5}
    base.update(kw)
    return resolve(TrainingSettings(), **base)


def test_train_registers_a_pending_model_with_checksum_and_metrics(
        history_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        result = run_training(conn, cfg(), models_dir=tmp_path)
        model = result["models"][0]
        assert result["models_passed"] == 1
        assert model["status"] == "PENDING"
        row = conn.execute(
            "SELECT status, validation_passed, model_path, artifact_sha256, "
            "array_length(windows_hours, 1), array_length(offsets_pct, 1), "
            "jsonb_array_length(metrics->'target_auc'), mean_auc, task_type, run_id "
            "FROM model_registry").fetchone()
        assert row is not None
        status, passed, path, sha, n_w, n_o, n_auc, mean_auc, task, run_id = row
        assert (status, passed, n_w, n_o, n_auc, task) == ("PENDING", True, 7, 6, 42, "CPU")
        assert artifacts.sha256_file(tmp_path / path) == sha
        assert json.loads((tmp_path / path).with_name("meta.json").read_text())["targets"][0] \
            == "fill_1h_1.25pct"
        assert float(mean_auc) >= 0.5
        job = conn.execute("SELECT status, models_trained, models_passed, items_count, "
                           "metrics->'global'->>'brier' IS NOT NULL FROM training_jobs "
                           "WHERE run_id = %s", (run_id,)).fetchone()
        assert job == ("COMPLETED", 1, 1, ITEMS, True)


def test_a_model_failing_the_gate_is_not_registered(history_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        with pytest.raises(Failed, match="no model passed the validation gate") as exc:
            run_training(conn, cfg(min_auc=0.999), models_dir=tmp_path,
                         promote=True)
        assert exc.value.details["models"][0]["passed_gate"] is False
        assert conn.execute("SELECT count(*) FROM model_registry").fetchone() == (0,)
        assert conn.execute("SELECT status, models_passed FROM training_jobs").fetchone() == (
            "COMPLETED", 0)


def test_promote_bootstraps_once_then_leaves_pending_without_a_token(
        history_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(history_dsn, autocommit=True) as conn:
        first = run_training(conn, cfg(), models_dir=tmp_path,
                             promote=True)
        assert first["models"][0]["status"] == "ACTIVE"
        second = run_training(conn, cfg(), models_dir=tmp_path,
                              promote=True)
        assert second["models"][0]["status"] == "PENDING"
        assert "left PENDING" in second["models"][0]["promotion"]
        assert second["run_id"] != first["run_id"]
        assert conn.execute("SELECT count(*) FROM model_registry WHERE status = 'ACTIVE'"
                            ).fetchone() == (1,)


def test_too_little_history_is_refused_and_recorded(db_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        seed_recent(conn, items=3, days=3, seed=2)
        with pytest.raises(InvalidInput, match="not enough history"):
            run_training(conn, cfg(days=3), models_dir=tmp_path)
        assert conn.execute("SELECT status FROM training_jobs").fetchone() == ("FAILED",)


def test_cli_train_json(history_dsn: str, tmp_path: Path) -> None:
    env = dict(os.environ, GEPT_MODELS_DIR=str(tmp_path), GEPT_TASK_TYPE="CPU",
               GEPT_TRAIN_MIN_AUC="0.5")
    proc = subprocess.run([sys.executable, "-m", "gept.cli", "train", "--items", str(ITEMS),
                           "--days", "10", "--iterations", "5", "--promote", "--json"],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["targets"] == 42
    assert body["models"][0]["status"] == "ACTIVE"
