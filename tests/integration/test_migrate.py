"""`gept db migrate` against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from gept.core.errors import IntegrityError, NeedsCoordination
from gept.db import migrate as migrate_mod
from gept.db.migrate import Migration, load_migrations, migrate, status


def test_fresh_database_gets_every_migration_and_rerun_is_a_no_op(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn) as conn:
        first = migrate(conn)
        again = migrate(conn)
    assert first.pending == []
    assert first.current == load_migrations()[-1].version
    assert again.applied == first.applied


def test_changed_applied_migration_is_refused(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
        conn.commit()
        with pytest.raises(IntegrityError, match="changed after it was applied"):
            status(conn)


def test_new_predictions_migration_on_live_schema_needs_a_token(
        db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = Migration(9999, "alter_predictions",
                      "-- gept:zone predictions-schema\nALTER TABLE predictions ADD COLUMN x INT;",
                      ("predictions-schema",))
    real = load_migrations()
    monkeypatch.setattr(migrate_mod, "load_migrations", lambda: [*real, extra])
    with psycopg.connect(db_dsn) as conn:
        with pytest.raises(NeedsCoordination) as info:
            migrate(conn)
        assert info.value.details["zone"] == "predictions-schema"
        cols = conn.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_name = 'predictions' AND column_name = 'x'").fetchall()
    assert cols == []


def test_max_int_price_and_nulls_round_trip(db_dsn: str) -> None:
    ts = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    from gept.db import partitions

    with psycopg.connect(db_dsn) as conn:
        partitions.ensure(conn, "price_data_5min", ts)
        conn.execute("INSERT INTO price_data_5min VALUES (1, %s, 2147483647, 5000000000, NULL, 0)",
                     (ts,))
        row = conn.execute("SELECT avg_high_price, high_price_volume, avg_low_price "
                           "FROM price_data_5min").fetchone()
    assert row == (2147483647, 5000000000, None)
