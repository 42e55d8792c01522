"""Primary/fallback failover: freshness gate, the advisory lock across writers, one batch per
block — against a real PostgreSQL."""

from __future__ import annotations

import threading

import psycopg
import pytest
from mlseed import ITEMS, one

from gept.core.errors import Locked
from gept.inference.failover import LOCK_KEY
from gept.inference.runner import RunResult, run_inference


def hold_back_latest_block(dsn: str) -> None:
    """Remove the newest block (kept aside) so a later 'collector run' can add it back."""
    with psycopg.connect(dsn) as conn:
        conn.execute('CREATE TABLE held AS SELECT * FROM price_data_5min WHERE "timestamp" = '
                     '(SELECT max("timestamp") FROM price_data_5min)')
        conn.execute('DELETE FROM price_data_5min WHERE "timestamp" = '
                     '(SELECT max("timestamp") FROM held)')


def release_block(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO price_data_5min SELECT * FROM held")


def test_fallback_does_nothing_while_primary_is_fresh(ml_dsn: str) -> None:
    hold_back_latest_block(ml_dsn)
    assert run_inference("primary").status == "completed"
    release_block(ml_dsn)                       # a new block exists, but the primary is fresh
    rows_before = one(ml_dsn, "SELECT count(*) FROM predictions")
    result = run_inference("fallback")
    assert result.status == "skipped"
    assert "primary is writing" in result.reason
    assert one(ml_dsn, "SELECT count(*) FROM predictions") == rows_before
    assert one(ml_dsn, "SELECT count(*) FROM prediction_batches") == 1
    assert one(ml_dsn, "SELECT status FROM inference_runs WHERE role = 'fallback'") == "skipped"


def test_fallback_writes_when_predictions_are_stale(ml_dsn: str) -> None:
    hold_back_latest_block(ml_dsn)
    assert run_inference("primary").status == "completed"
    with psycopg.connect(ml_dsn) as conn:       # the primary went quiet 20 minutes ago
        conn.execute("UPDATE predictions SET \"time\" = \"time\" - interval '20 min', "
                     "target_hour = target_hour - interval '20 min'")
        conn.execute("UPDATE prediction_batches SET \"time\" = \"time\" - interval '20 min', "
                     "created_at = now() - interval '20 min'")
    release_block(ml_dsn)
    result = run_inference("fallback")
    assert result.status == "completed"
    assert result.rows_written == ITEMS * 42
    roles = one(ml_dsn, "SELECT array_agg(role ORDER BY \"time\") FROM prediction_batches")
    assert roles == ["primary", "fallback"]


def test_fallback_writes_when_there_are_no_predictions_at_all(ml_dsn: str) -> None:
    assert run_inference("fallback").status == "completed"
    assert one(ml_dsn, "SELECT role FROM prediction_batches") == "fallback"


def test_lock_held_elsewhere_blocks_both_roles(ml_dsn: str) -> None:
    with psycopg.connect(ml_dsn, autocommit=True) as other_host:
        other_host.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(Locked) as exc:
            run_inference("primary")
        assert exc.value.exit_code == 4
        fallback = run_inference("fallback")
        assert fallback.status == "skipped"
        assert "lock" in fallback.reason
    assert one(ml_dsn, "SELECT count(*) FROM predictions") == 0
    # Released: the next cycle writes.
    assert run_inference("primary").status == "completed"


@pytest.mark.parametrize("attempt", range(3))
def test_primary_and_fallback_started_together_write_exactly_one_batch(
        ml_dsn: str, attempt: int) -> None:
    barrier = threading.Barrier(2)
    outcomes: dict[str, RunResult | Exception] = {}

    def run(role: str) -> None:
        barrier.wait()
        try:
            outcomes[role] = run_inference(role)
        except Exception as exc:               # Locked is a legitimate outcome for primary
            outcomes[role] = exc

    threads = [threading.Thread(target=run, args=(role,)) for role in ("primary", "fallback")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert one(ml_dsn, "SELECT count(*) FROM prediction_batches") == 1
    assert one(ml_dsn, "SELECT count(*) FROM predictions") == ITEMS * 42
    statuses = sorted(o.status if isinstance(o, RunResult) else type(o).__name__
                      for o in outcomes.values())
    assert statuses.count("completed") == 1, outcomes
    assert all(s in ("completed", "skipped", "Locked") for s in statuses), outcomes
