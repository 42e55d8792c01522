"""Least privilege in PostgreSQL, proven by trying, on a real server.

The schema is migrated by the owner role and ``gept db grants`` (roles.apply_grants) is
applied; then every role tries what it must not do, by the obvious route and by the
others (DDL, DML, DROP, ``BEGIN READ WRITE``, ``SET default_transaction_read_only``,
``COPY ... TO PROGRAM``, temp tables, large objects, the partition functions).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import errors

from gept.db import partitions, roles
from gept.db.migrate import migrate
from gept.inference import retention
from gept.testing.pgserver import PgServer

_n = itertools.count()
DENIED = (errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)


@pytest.fixture
def granted(pg_server: PgServer) -> Iterator[Callable[[str], psycopg.Connection[Any]]]:
    """A database owned by ``osrs_user``, migrated by it, grants applied; yields connect()."""
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as su:
        for stmt in roles.create_roles_sql():
            su.execute(stmt.encode())
        name = f"roles{os.getpid()}_{next(_n)}"
        su.execute(f'CREATE DATABASE "{name}" OWNER osrs_user'.encode())
    with psycopg.connect(pg_server.dsn(name), autocommit=True) as su:
        for stmt in roles.database_sql():
            su.execute(stmt.encode())
    base = pg_server.dsn(name).replace(f"{pg_server.user}@", "{role}@")
    partitions.forget_cache()
    with psycopg.connect(base.format(role=roles.OWNER)) as owner:
        migrate(owner)
        report = roles.apply_grants(owner)
        assert report.unclassified == [], report.unclassified
        # The deploys' drift check agrees: nothing to converge right after the grants step.
        lines = [" ".join(str(v) for v in row) for row in owner.execute(
            roles.GRANTS_QUERY).fetchall()]
        assert roles.grants_drift(lines) == []
        owner.execute("GRANT INSERT ON predictions TO gept_engine")
        lines = [" ".join(str(v) for v in row) for row in owner.execute(
            roles.GRANTS_QUERY).fetchall()]
        assert roles.grants_drift(lines) == [
            "predictions: gept_engine has INSERT,SELECT, wants SELECT"]
        roles.apply_grants(owner)
    opened: list[psycopg.Connection[Any]] = []

    def connect(role: str) -> psycopg.Connection[Any]:
        conn = psycopg.connect(base.format(role=role), autocommit=True)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
    partitions.forget_cache()


def refused(conn: psycopg.Connection[Any], statement: str, params: Any = None) -> None:
    """``statement`` fails with a privilege (or read-only) error, and changes nothing."""
    with pytest.raises(DENIED):
        conn.execute(statement.encode() if params is None else statement, params)


def seed_model(connect: Callable[[str], psycopg.Connection[Any]]) -> int:
    reg = connect(roles.REGISTRY)
    row = reg.execute(
        "INSERT INTO model_registry (scope, run_id, model_path, artifact_sha256, "
        "windows_hours, offsets_pct, validation_passed) VALUES "
        "('global', '20260101_000000', 'm.cbm', repeat('a', 64), '{1}', '{0.01}', true) "
        "RETURNING id").fetchone()
    assert row is not None
    return int(row[0])


def test_engine_writes_its_tables_and_cannot_touch_predictions_or_the_registry(
        granted: Callable[[str], psycopg.Connection[Any]]) -> None:
    model_id = seed_model(granted)
    engine = granted(roles.ENGINE)
    engine.execute("INSERT INTO engine_trades (trade_id, user_id, item_id, item_name, "
                   "buy_price, sell_price, quantity) VALUES ('t1', 'u', 2, 'x', 1, 2, 3)")
    engine.execute("UPDATE engine_trades SET status = 'completed' WHERE trade_id = 't1'")
    engine.execute("SELECT count(*) FROM predictions").fetchone()
    engine.execute("SELECT status FROM model_registry").fetchall()
    refused(engine, "ALTER TABLE predictions ADD COLUMN pwned int")
    refused(engine, "ALTER TABLE predictions DROP COLUMN confidence")
    refused(engine, "UPDATE model_registry SET status = 'ARCHIVED' WHERE id = %s", (model_id,))
    refused(engine, "INSERT INTO predictions SELECT * FROM predictions LIMIT 0")
    refused(engine, "DELETE FROM prediction_batches")
    refused(engine, "TRUNCATE predictions")
    refused(engine, "SELECT bytes FROM model_artifacts")
    for table in ("predictions", "model_registry", "engine_trades", "items"):
        refused(engine, f"DROP TABLE {table}")
    refused(engine, "CREATE TABLE engine_new (id int)")
    refused(engine, "SELECT public.gept_ensure_partition('predictions', now())")
    refused(engine, "SELECT public.gept_drop_old_predictions(3)")


def test_collectors_write_market_data_only(
        granted: Callable[[str], psycopg.Connection[Any]]) -> None:
    model_id = seed_model(granted)
    col = granted(roles.COLLECTORS)
    col.execute("INSERT INTO items (item_id, name) VALUES (2, 'Cannonball') "
                "ON CONFLICT (item_id) DO UPDATE SET name = excluded.name")
    col.execute("INSERT INTO collector_runs (collector, status) VALUES ('5m', 'ok')")
    # Partitions of its own tables: through the owner's function, grants copied.
    future = datetime.now(UTC) + timedelta(days=400)
    created = partitions.ensure(col, "price_data_5min", future)
    assert created == [partitions.partition_name(
        "price_data_5min", partitions._floor(future, "month"), "month")]
    col.execute(f'INSERT INTO "{created[0]}" (item_id, "timestamp") VALUES (2, %s)', (future,))
    refused(col, "INSERT INTO prediction_batches (\"time\", run_id, role, rows_written, items) "
                 "VALUES (now(), 'r', 'primary', 0, 0)")
    refused(col, "UPDATE model_registry SET status = 'ACTIVE' WHERE id = %s", (model_id,))
    refused(col, "INSERT INTO model_artifacts (sha256, bytes, size_bytes) "
                 "VALUES (repeat('b', 64), '\\x00', 1)")
    refused(col, "ALTER TABLE predictions ADD COLUMN pwned int")
    refused(col, "ALTER TABLE items ADD COLUMN pwned int")
    refused(col, "DROP TABLE collector_runs")
    with pytest.raises(DENIED):
        partitions.ensure(col, "predictions", future)


def test_inference_writes_predictions_creates_and_retains_partitions(
        granted: Callable[[str], psycopg.Connection[Any]]) -> None:
    model_id = seed_model(granted)
    inf = granted(roles.INFERENCE)
    now = datetime.now(UTC)
    created = partitions.ensure(inf, "predictions", now - timedelta(days=10), now)
    assert created, "no partition created"
    newest = partitions.partition_name("predictions", partitions._floor(now, "day"), "day")
    # Straight into a partition (what batch COPY does): the partition has the grants.
    inf.execute(f'INSERT INTO "{newest}" ("time", item_id, item_name, hour_offset, '
                "target_hour, offset_pct, fill_probability, expected_value, buy_price, "
                "sell_price) VALUES (%s, 2, 'x', 1, %s, 0.01, 0.5, 1, 1, 2)", (now, now))
    inf.execute("INSERT INTO prediction_batches (\"time\", run_id, role, rows_written, items) "
                "VALUES (%s, 'r', 'primary', 1, 1)", (now - timedelta(days=9),))
    inf.execute("SELECT bytes FROM model_artifacts").fetchall()  # the fallback loads models
    refused(inf, "ALTER TABLE predictions ADD COLUMN pwned int")
    refused(inf, f'ALTER TABLE "{newest}" ADD COLUMN pwned int')
    refused(inf, "UPDATE model_registry SET status = 'DEPRECATED' WHERE id = %s", (model_id,))
    refused(inf, "DROP TABLE predictions")
    refused(inf, f'DROP TABLE "{newest}"')
    # Retention through the owner's function: old days go, the last 3 days stay.
    dropped = retention.drop_old_partitions(inf, keep_days=3)
    assert dropped, "nothing dropped"
    assert newest not in dropped
    remaining = {str(r[0]) for r in inf.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'predictions'::regclass").fetchall()}
    assert not remaining & set(dropped)
    assert newest in remaining
    row = inf.execute("SELECT count(*) FROM prediction_batches").fetchone()
    assert row is not None
    assert row[0] == 0
    # A leaked inference password cannot drop fresh predictions.
    with pytest.raises(errors.InvalidParameterValue):
        inf.execute("SELECT public.gept_drop_old_predictions(1)")
    assert newest in {str(r[0]) for r in inf.execute(
        "SELECT relname FROM pg_class WHERE relname LIKE 'predictions_p%'").fetchall()}


def test_only_the_registry_role_changes_active(
        granted: Callable[[str], psycopg.Connection[Any]]) -> None:
    model_id = seed_model(granted)
    for role in (roles.ENGINE, roles.COLLECTORS, roles.INFERENCE, roles.PROBE):
        refused(granted(role), "UPDATE model_registry SET status = 'ACTIVE' WHERE id = %s",
                (model_id,))
    reg = granted(roles.REGISTRY)
    reg.execute("UPDATE model_registry SET status = 'ACTIVE' WHERE id = %s", (model_id,))
    refused(reg, "ALTER TABLE model_registry DROP CONSTRAINT model_registry_check")
    refused(reg, "INSERT INTO predictions SELECT * FROM predictions LIMIT 0")


def test_probe_reads_and_can_write_nothing_by_any_route(
        granted: Callable[[str], psycopg.Connection[Any]]) -> None:
    seed_model(granted)
    probe = granted(roles.PROBE)
    assert probe.execute("SELECT count(*) FROM model_registry").fetchone() == (1,)
    probe.execute("SELECT count(*) FROM engine_trades").fetchone()
    probe.execute("SELECT count(*) FROM pg_stat_activity").fetchone()
    writes = [
        "UPDATE model_registry SET status = 'ARCHIVED'",
        "DELETE FROM items",
        "INSERT INTO items (item_id, name) VALUES (99, 'x')",
        "ALTER TABLE predictions ADD COLUMN pwned int",
        "DROP TABLE items",
        "TRUNCATE collector_runs",
        "CREATE TABLE pwned (id int)",
        "CREATE TEMP TABLE pwned (id int)",
        "SELECT lo_create(0)",
        "SELECT nextval('collector_runs_id_seq')",
        "SELECT public.gept_ensure_partition('predictions', now())",
    ]
    for statement in writes:
        refused(probe, statement)
        # A read-write transaction asked for explicitly gains nothing.
        refused_read_write(probe, statement)
    probe.execute("SET default_transaction_read_only = off")
    for statement in writes:
        refused(probe, statement)
    with pytest.raises(errors.InsufficientPrivilege):
        probe.execute("COPY (SELECT 1) TO PROGRAM 'id'")
    row = probe.execute(
        "SELECT rolsuper, pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'), "
        "pg_has_role(current_user, 'pg_write_server_files', 'MEMBER') FROM pg_roles "
        "WHERE rolname = current_user").fetchone()
    assert row == (False, False, False)


def refused_read_write(conn: psycopg.Connection[Any], statement: str) -> None:
    """``BEGIN READ WRITE``, then ``statement``: still refused."""
    conn.execute("BEGIN READ WRITE")
    try:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement.encode())
    finally:
        conn.execute("ROLLBACK")


def test_grants_follow_table_names_for_tables_added_later(
        granted: Callable[[str], psycopg.Connection[Any]], pg_server: PgServer) -> None:
    engine = granted(roles.ENGINE)
    dbname = engine.info.dbname
    owner_dsn = pg_server.dsn(dbname).replace(f"{pg_server.user}@", f"{roles.OWNER}@")
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        owner.execute("CREATE TABLE engine_later (id int)")
        owner.execute("CREATE TABLE misc_later (id int)")
        probe = granted(roles.PROBE)
        probe.execute("SELECT * FROM misc_later").fetchall()  # default privileges
        report = roles.apply_grants(owner)
    assert report.unclassified == ["misc_later"]
    assert "engine_later" in report.roles[roles.ENGINE]["engine"]
    engine.execute("INSERT INTO engine_later VALUES (1)")
    refused(engine, "INSERT INTO misc_later VALUES (1)")
    refused(granted(roles.COLLECTORS), "INSERT INTO engine_later VALUES (1)")


def test_service_roles_can_read_the_migration_status(
        granted: Callable[[str], psycopg.Connection[Any]]) -> None:
    """`gept db status` (the checks run it as the service user) works without the owner."""
    from gept.db.migrate import status

    result = status(granted(roles.INFERENCE))
    assert result.pending == []


def test_partitions_made_by_the_services_need_no_grants_step(
        granted: Callable[[str], psycopg.Connection[Any]], pg_server: PgServer) -> None:
    """A partition created through the function has its parent's grants: no drift."""
    later = datetime.now(UTC) + timedelta(days=60)
    assert partitions.ensure(granted(roles.INFERENCE), "predictions", later)
    assert partitions.ensure(granted(roles.COLLECTORS), "prices_latest_1m", later)
    probe = granted(roles.PROBE)
    lines = [" ".join(str(v) for v in row) for row in probe.execute(
        roles.GRANTS_QUERY).fetchall()]
    assert roles.grants_drift(lines) == []
