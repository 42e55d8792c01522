"""`gept infer` against a real PostgreSQL with simulator history and a trained model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from mlseed import ITEMS, one

from gept.core.config import get_settings
from gept.core.errors import Failed, IntegrityError, InvalidInput
from gept.db import partitions
from gept.inference.retention import drop_old_partitions
from gept.inference.runner import run_inference
from gept.market import tax


def test_primary_writes_one_complete_batch(ml_dsn: str) -> None:
    result = run_inference("primary")
    assert result.status == "completed"
    assert result.items_predicted == ITEMS
    assert result.rows_written == ITEMS * 7 * 6            # items x windows x offsets
    with psycopg.connect(ml_dsn) as conn:
        batch = conn.execute('SELECT "time", rows_written, items, role, model_ids '
                             "FROM prediction_batches").fetchall()
        assert len(batch) == 1
        time_, rows, items, role, model_ids = batch[0]
        assert (rows, items, role) == (ITEMS * 42, ITEMS, "primary")
        active = conn.execute("SELECT id FROM model_registry WHERE status = 'ACTIVE'").fetchone()
        assert active is not None
        assert model_ids == [active[0]]
        stats = conn.execute(
            "SELECT count(*), min(fill_probability), max(fill_probability), "
            "count(DISTINCT item_id), count(DISTINCT (hour_offset, offset_pct)), "
            "bool_and(target_hour = \"time\" + hour_offset * interval '1 hour'), "
            "bool_and(buy_price < current_low AND sell_price > current_high), "
            "bool_and(model_id = %s) FROM predictions WHERE \"time\" = %s",
            (active[0], time_)).fetchone()
        assert stats is not None
        count, pmin, pmax, n_items, n_targets, hours_ok, prices_ok, model_ok = stats
        assert count == ITEMS * 42
        assert n_items == ITEMS
        assert n_targets == 42
        assert 0.0 <= pmin <= pmax <= 1.0
        assert hours_ok
        assert prices_ok
        assert model_ok
        for p, ev, buy, sell in conn.execute(
                "SELECT fill_probability, expected_value, buy_price, sell_price "
                "FROM predictions LIMIT 50").fetchall():
            assert ev == pytest.approx(p * tax.net_return(buy, sell))
        names = conn.execute("SELECT count(*) FROM predictions p JOIN items i USING (item_id) "
                             "WHERE p.item_name = i.name").fetchone()
        assert names is not None
        assert names[0] == ITEMS * 42
        run = conn.execute("SELECT status, rows_written, items_predicted, model_ids, "
                           "block_time <= %s, finished_at IS NOT NULL FROM inference_runs",
                           (time_,)).fetchall()
        assert run == [("completed", ITEMS * 42, ITEMS, [active[0]], True, True)]


def test_a_block_is_never_written_twice(ml_dsn: str) -> None:
    assert run_inference("primary").status == "completed"
    again = run_inference("primary")
    assert again.status == "skipped"
    assert "already has a batch" in again.reason
    assert one(ml_dsn, "SELECT count(*) FROM prediction_batches") == 1
    assert one(ml_dsn, "SELECT count(*) FROM predictions") == ITEMS * 42


def test_tampered_artifact_is_refused_and_nothing_is_written(
        ml_dsn: str, trained: tuple[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "models"
    shutil.copytree(trained[1], copy)
    model_file = next(copy.rglob("model.cbm"))
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    monkeypatch.setenv("GEPT_MODELS_DIR", str(copy))
    get_settings.cache_clear()
    with pytest.raises(IntegrityError, match="failed its checksum"):
        run_inference("primary")
    assert one(ml_dsn, "SELECT count(*) FROM predictions") == 0
    assert one(ml_dsn, "SELECT status FROM inference_runs") == "failed"
    assert "checksum" in one(ml_dsn, "SELECT error FROM inference_runs")


def test_no_active_model_fails_clearly(ml_dsn: str) -> None:
    with psycopg.connect(ml_dsn) as conn:
        conn.execute("UPDATE model_registry SET status = 'DEPRECATED'")
    with pytest.raises(Failed, match="no ACTIVE model"):
        run_inference("primary")
    assert one(ml_dsn, "SELECT count(*) FROM prediction_batches") == 0


def test_retention_drops_whole_old_partitions(ml_dsn: str) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=6)
    with psycopg.connect(ml_dsn, autocommit=True) as conn:
        partitions.ensure(conn, "predictions", old)
        conn.execute("INSERT INTO prediction_batches (\"time\", run_id, role, rows_written, "
                     "items) VALUES (%s, 'old', 'primary', 0, 0)", (old,))
        dropped = drop_old_partitions(conn, keep_days=3)
        assert f"predictions_p{old:%Y%m%d}" in dropped
        assert f"predictions_p{now:%Y%m%d}" not in dropped
        left = conn.execute("SELECT count(*) FROM prediction_batches").fetchone()
        assert left is not None
        assert left[0] == 0
        assert conn.execute("SELECT to_regclass(%s)",
                            (f"predictions_p{now:%Y%m%d}",)).fetchone() == (
            f"predictions_p{now:%Y%m%d}",)
        with pytest.raises(InvalidInput, match="at least 3 days"):
            drop_old_partitions(conn, keep_days=1)


def test_cli_infer_json(ml_dsn: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "gept.cli", "infer", "--role", "primary",
                           "--json"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ), check=False)
    assert proc.returncode == 0, proc.stderr
    assert '"status": "completed"' in proc.stdout
    assert f'"rows_written": {ITEMS * 42}' in proc.stdout


def test_a_host_without_the_artifact_loads_it_from_the_database(
        ml_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ampere's fallback has no copy of Hydra's model file: it comes through PostgreSQL."""
    other_host_models = tmp_path / "ampere-models"
    other_host_models.mkdir()
    monkeypatch.setenv("GEPT_MODELS_DIR", str(other_host_models))
    get_settings.cache_clear()
    result = run_inference("fallback")
    assert result.status == "completed"
    assert result.rows_written == ITEMS * 42
    cached = list(other_host_models.rglob("model.cbm"))
    assert len(cached) == 1                     # verified, then cached for the next run
