"""The restore drill: restore the repository into a scratch instance and compare it.

Run as root on a standby host (``gept-op restore-drill``: the ``restore-drill`` runbook and
the weekly ``gept-restore-drill.timer``). It never touches the live cluster: pgBackRest
restores into ``<drill_dir>/data`` (``--archive-mode=off``, so the scratch instance archives
nothing into the repository), a scratch PostgreSQL starts there on ``drill_port`` with only
a Unix socket in ``drill_dir``, is queried, stopped and removed. The live cluster (a
standby: read-only by nature) is only read, as the probe role.

What it compares, for rows older than a cutoff (15 minutes before the recovery point, so
rows still arriving on the source do not count): the row count of each key table and a
checksum of its rows in a recent window (``TABLES``); the recovery point is the last
transaction the scratch instance replayed. The result is printed as JSON and written as
``gept_restore_drill.prom`` for the textfile collector.

Example:
    >>> [t.name for t in TABLES][:2]
    ['price_data_5min', 'prediction_batches']
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gept.db.backups import (
    BackupError,
    BackupFacts,
    number,
    restore_args,
    run,
    wait_writable,
    write_textfile,
)

CUTOFF_MARGIN = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Table:
    """A key table: its time column, the immutable columns checksummed, the window."""

    name: str
    time_column: str
    columns: str
    window_hours: int | None  # None: every row older than the cutoff


TABLES: tuple[Table, ...] = (
    Table("price_data_5min", '"timestamp"', 'item_id, "timestamp", avg_high_price, '
          "high_price_volume, avg_low_price, low_price_volume", 24),
    Table("prediction_batches", '"time"', '"time", run_id, role, rows_written, items', None),
    Table("predictions", '"time"', '"time", item_id, hour_offset, offset_pct, '
          "fill_probability, buy_price, sell_price, model_id", 1),
    Table("model_registry", "trained_at", "id, scope, run_id, artifact_sha256", None),
    Table("model_artifacts", "created_at", "sha256, size_bytes", None),
)


def table_sql(table: Table, cutoff: str) -> str:
    """``rows|checksum`` of ``table`` as of ``cutoff`` (an order-independent checksum).

    Example:
        >>> "hashtextextended" in table_sql(TABLES[0], "2026-12-01 10:00:00+00")
        True
    """
    older = f"{table.time_column} < timestamptz '{cutoff}'"
    window = older
    if table.window_hours is not None:
        window += (f" AND {table.time_column} >= timestamptz '{cutoff}' - interval "
                   f"'{table.window_hours} hours'")
    return (f"SELECT (SELECT count(*) FROM {table.name} WHERE {older}) || '|' || "
            f"coalesce((SELECT sum(hashtextextended(ROW({table.columns})::text, 0)) "
            f"FROM {table.name} WHERE {window}), 0)")


def _query(sql: str, *, port: int, db: str, host: str | None = None,
           user: str = "postgres", role: str | None = None) -> str:
    argv = ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-p", str(port), "-d", db]
    if host:
        argv += ["-h", host]
    if role:
        argv += ["-U", role]
    return run(argv, user=user, timeout=3600,
               stdin=f"SET TimeZone = 'UTC';\n{sql};\n").strip().splitlines()[-1]


def _scratch_config(facts: BackupFacts, data: Path) -> None:
    """The scratch instance's own configuration (a Debian data directory has none)."""
    drill = Path(facts.drill_dir)
    (data / "postgresql.conf").write_text(
        "# The restore drill's scratch instance (gept.db.drill): socket only, no archiving.\n"
        f"port = {facts.drill_port}\nlisten_addresses = ''\n"
        f"unix_socket_directories = '{drill}'\narchive_mode = off\n"
        # Connection and worker limits stay at their defaults: recovery refuses settings
        # lower than the source's (what the deploys set there: the defaults).
        "shared_buffers = 64MB\nhot_standby = on\nwal_level = replica\n")
    (data / "pg_hba.conf").write_text("local all postgres peer\n")
    (data / "pg_ident.conf").write_text("")
    for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
        shutil.chown(data / name, "postgres", "postgres")


def drill(facts: BackupFacts, target: str | None = None) -> dict[str, Any]:
    """Run one drill; the report (``ok`` False when a table differs)."""
    if facts.role != "database":
        raise BackupError("the restore drill runs on a database (standby) host")
    drill_dir = Path(facts.drill_dir)
    data = drill_dir / "data"
    ctl = f"{facts.pg_bin}/pg_ctl"
    started = time.monotonic()
    _stop_scratch(ctl, data)
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(mode=0o700, parents=True)
    shutil.chown(data, "postgres", "postgres")
    report: dict[str, Any] = {"target": target or "latest"}
    try:
        args = restore_args(facts, target)
        # Latest: recovery replays every archived segment, then promotes by itself.
        run([*args[:2], f"--pg1-path={data}", "--archive-mode=off", *args[2:]],
            timeout=6 * 3600)
        _scratch_config(facts, data)
        run([ctl, "-D", str(data), "-l", str(drill_dir / "postgres.log"), "-w", "-t", "3600",
             "start"], timeout=3700)
        wait_writable(facts, port=facts.drill_port, host=str(drill_dir))
        restored = time.monotonic() - started
        point = _query("SELECT coalesce(pg_last_xact_replay_timestamp(), now())",
                       port=facts.drill_port, db="postgres", host=str(drill_dir))
        point_at = dt.datetime.fromisoformat(point.replace(" ", "T"))
        cutoff = (point_at - CUTOFF_MARGIN).isoformat(sep=" ")
        tables: dict[str, Any] = {}
        for table in TABLES:
            sql = table_sql(table, cutoff)
            got = _query(sql, port=facts.drill_port, db=facts.db_name, host=str(drill_dir))
            # The source: this host's live cluster, read as the probe role (peer, root).
            want = _query(sql, port=facts.port, db=facts.db_name, user="root",
                          role=facts.probe_user)
            rows, checksum = got.split("|")
            src_rows, src_checksum = want.split("|")
            tables[table.name] = {"rows": int(rows), "source_rows": int(src_rows),
                                  "checksum_ok": checksum == src_checksum,
                                  "ok": rows == src_rows and checksum == src_checksum}
        report.update(
            recovery_point=point_at.isoformat(), cutoff=cutoff,
            recovery_point_age_seconds=round(
                (dt.datetime.now(dt.UTC) - point_at).total_seconds(), 1),
            restore_seconds=round(restored, 1), tables=tables,
            rows=sum(t["rows"] for t in tables.values()),
            ok=all(t["ok"] for t in tables.values()))
    except BackupError as exc:
        report.update(ok=False, error=str(exc))
    finally:
        _stop_scratch(ctl, data)
        shutil.rmtree(data, ignore_errors=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    write_textfile(facts.textfile_dir, "gept_restore_drill.prom", render(report, time.time()))
    return report


def _stop_scratch(ctl: str, data: Path) -> None:
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(BackupError):
            run([ctl, "-D", str(data), "-m", "fast", "-w", "stop"], timeout=300)


def render(report: dict[str, Any], now: float) -> str:
    """The drill's textfile metrics.

    Example:
        >>> render({"ok": True, "seconds": 3.0, "rows": 5,
        ...         "recovery_point_age_seconds": 20.0}, 100).splitlines()[3]
        'gept_restore_drill_ok 1'
    """
    lines = [f"# gept restore drill, written {int(now)}"]

    def gauge(name: str, value: float, help_: str) -> None:
        lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge",
                      f"{name} {number(value)}"])

    gauge("gept_restore_drill_ok", 1 if report.get("ok") else 0,
          "1 when the last restore drill restored and every key table matched the source.")
    gauge("gept_restore_drill_last_run_timestamp_seconds", now,
          "Unix time the last restore drill finished (successful or not).")
    if report.get("ok"):
        gauge("gept_restore_drill_last_success_timestamp_seconds", now,
              "Unix time of the last successful restore drill.")
    gauge("gept_restore_drill_duration_seconds", float(report.get("seconds", 0)),
          "How long the last drill took, restore and comparison included (a measured RTO).")
    if "recovery_point_age_seconds" in report:
        gauge("gept_restore_drill_recovery_point_age_seconds",
              float(report["recovery_point_age_seconds"]),
              "How far behind the drill's start the restored point was (a measured RPO).")
        gauge("gept_restore_drill_rows", float(report.get("rows", 0)),
              "Rows of the key tables in the restored copy, older than the cutoff.")
    return "\n".join(lines) + "\n"


def main_report(target: str | None = None) -> str:
    """Run a drill on this host; the JSON report (``gept-op restore-drill``)."""
    return json.dumps(drill(BackupFacts.load(), target), indent=2, sort_keys=True)
