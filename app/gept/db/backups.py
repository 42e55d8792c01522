"""pgBackRest on a database host, as root: its facts, its metrics, the live restore.

The deploys (``deploys/tasks/backups.py``) write ``/etc/gept/backup.json``; nothing here is
configured by a flag or the environment. pgBackRest and PostgreSQL run as ``postgres``.

* :func:`metrics` — backup ages and WAL-archive health for node_exporter's textfile
  collector (cron, every minute): ``python -I -m gept.db.backups metrics``.
* :func:`restore_live` — the ``restore-postgres`` danger zone's action (``gept-gate``):
  stop PostgreSQL, restore the data directory from the repository (latest, or a point in
  time), start it and wait until it accepts writes.

Example:
    >>> render_metrics({"backups": [{"type": "full", "stop": 100}], "status": 0},
    ...                None, now=160).splitlines()[-1]
    'gept_backup_repository_ok 1'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKUP_JSON = Path("/etc/gept/backup.json")


class BackupError(Exception):
    """A pgBackRest or PostgreSQL step failed (its output is in the message)."""


@dataclass(frozen=True)
class BackupFacts:
    """``/etc/gept/backup.json`` as the deploys wrote it."""

    stanza: str
    role: str
    pg_version: int
    data_dir: str
    pg_bin: str
    port: int
    db_name: str
    probe_user: str
    drill_port: int
    drill_dir: str
    textfile_dir: str

    @classmethod
    def load(cls, path: Path = BACKUP_JSON) -> BackupFacts:
        """Read the host's backup facts.

        Raises:
            BackupError: the host was not converged with backups.
        """
        try:
            raw = json.loads(path.read_text())
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"{path} is missing or incomplete: converge this host") from exc


def run(argv: list[str], *, user: str | None = "postgres", timeout: float = 3600,
        stdin: str | None = None) -> str:
    """Run ``argv`` (as ``user`` through runuser, from ``/``); its stdout.

    Raises:
        BackupError: a nonzero exit, with the end of its output.
    """
    full = (["/usr/sbin/runuser", "-u", user, "--"] if user else []) + argv
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False,
                          input=stdin, cwd="/", stdin=None if stdin is not None
                          else subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        raise BackupError(f"{' '.join(argv[:3])}... exited {proc.returncode}: {tail}")
    return proc.stdout


def repository_info(facts: BackupFacts) -> dict[str, Any]:
    """``{"backups": [{"type", "stop"}...], "status": code}`` from ``pgbackrest info``."""
    out = run(["pgbackrest", f"--stanza={facts.stanza}", "--output=json", "info"], timeout=120)
    stanzas: list[dict[str, Any]] = json.loads(out)
    stanza = next((s for s in stanzas if s.get("name") == facts.stanza), {})
    return {"backups": [{"type": b.get("type"), "stop": int(b["timestamp"]["stop"])}
                        for b in stanza.get("backup", [])],
            "status": int(stanza.get("status", {}).get("code", 99))}


def archiver_state(facts: BackupFacts) -> dict[str, int]:
    """This cluster's ``pg_stat_archiver`` and whether it is in recovery (a standby)."""
    sql = ("SELECT pg_is_in_recovery()::int, archived_count, failed_count, "
           "coalesce(extract(epoch FROM last_archived_time), 0)::bigint, "
           "coalesce(extract(epoch FROM last_failed_time), 0)::bigint FROM pg_stat_archiver")
    out = run(["psql", "-XAtq", "-F", " ", "-p", str(facts.port), "-d", "postgres", "-c", sql],
              timeout=30).split()
    keys = ("in_recovery", "archived", "failed", "last_archived", "last_failed")
    return dict(zip(keys, (int(v) for v in out), strict=True))


def number(value: float) -> str:
    """A sample value as Prometheus reads it, whole seconds without an exponent.

    Example:
        >>> number(1796180982.0), number(0.25)
        ('1796180982', '0.25')
    """
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def render_metrics(info: dict[str, Any] | None, archiver: dict[str, int] | None,
                   now: float) -> str:
    """The textfile metrics (``info``/``archiver`` None when unreadable: reported as such)."""
    lines = [f"# gept backups, written {int(now)}"]

    def gauge(name: str, value: float, help_: str) -> None:
        lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge",
                      f"{name} {number(value)}"])

    if archiver is not None:
        gauge("gept_postgres_in_recovery", archiver["in_recovery"],
              "1 on a standby (its archiver is idle by design), 0 on the primary.")
        gauge("gept_wal_archive_last_success_timestamp_seconds", archiver["last_archived"],
              "Unix time of the last WAL segment archived to the repository.")
        gauge("gept_wal_archive_last_failure_timestamp_seconds", archiver["last_failed"],
              "Unix time of the last failed WAL archive attempt (0: never).")
        gauge("gept_wal_archive_failed_total", archiver["failed"],
              "WAL archive attempts that failed since the statistics were reset.")
        gauge("gept_wal_archived_total", archiver["archived"],
              "WAL segments archived since the statistics were reset.")
    if info is not None:
        backups = info["backups"]
        fulls = [b["stop"] for b in backups if b["type"] == "full"]
        if backups:
            gauge("gept_backup_last_success_timestamp_seconds",
                  max(b["stop"] for b in backups),
                  "Unix time the newest backup (full, differential or incremental) ended.")
        if fulls:
            gauge("gept_backup_last_full_timestamp_seconds", max(fulls),
                  "Unix time the newest full backup ended.")
        gauge("gept_backup_count", len(backups), "Backups in the repository.")
    gauge("gept_backup_repository_ok", 1 if info is not None and info["status"] == 0 else 0,
          "1 when pgBackRest reads the repository and reports the stanza ok.")
    return "\n".join(lines) + "\n"


def write_textfile(folder: str, name: str, text: str) -> Path:
    """Replace ``folder/name`` atomically (node_exporter must never read half a file)."""
    path = Path(folder) / name
    tmp = path.with_name(f".{name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    tmp.replace(path)
    return path


def metrics(facts: BackupFacts) -> str:
    """Collect and write ``gept_backup.prom``; returns the text."""
    try:
        info: dict[str, Any] | None = repository_info(facts)
    except (BackupError, ValueError, KeyError, subprocess.SubprocessError):
        info = None
    try:
        archiver: dict[str, int] | None = archiver_state(facts)
    except (BackupError, ValueError, subprocess.SubprocessError):
        archiver = None
    text = render_metrics(info, archiver, time.time())
    write_textfile(facts.textfile_dir, "gept_backup.prom", text)
    return text


def wait_writable(facts: BackupFacts, *, port: int | None = None, host: str | None = None,
                  timeout: float = 3600) -> float:
    """Wait until the cluster accepts connections and has left recovery; seconds waited."""
    start = time.monotonic()
    argv = ["psql", "-XAtq", "-p", str(port or facts.port), "-d", "postgres",
            "-c", "SELECT pg_is_in_recovery()"]
    if host:
        argv[1:1] = ["-h", host]
    while True:
        try:
            if run(argv, timeout=30).strip() == "f":
                return time.monotonic() - start
        except (BackupError, subprocess.SubprocessError):
            pass
        if time.monotonic() - start > timeout:
            raise BackupError(f"PostgreSQL on port {port or facts.port} did not finish "
                              f"recovery within {timeout:.0f} s")
        time.sleep(0.5)


def restore_args(facts: BackupFacts, target: str | None) -> list[str]:
    """PgBackRest's restore arguments: the latest point, or ``target`` (a timestamp).

    Example:
        >>> f = BackupFacts("gept", "database", 15, "/d", "/b", 5432, "db", "p", 1, "/x", "/t")
        >>> restore_args(f, "2026-12-01 10:00:00+00")[-3:]
        ['--type=time', '--target=2026-12-01 10:00:00+00', '--target-action=promote']
    """
    args = ["pgbackrest", f"--stanza={facts.stanza}", "restore"]
    if target:
        args += ["--type=time", f"--target={target}", "--target-action=promote"]
    return args


def restore_live(facts: BackupFacts, target: str | None = None) -> dict[str, Any]:
    """Restore this host's live cluster from the repository (the ``restore-postgres`` zone).

    The data directory is replaced (``--delta``: files that match are kept); PostgreSQL
    replays the archived WAL to the latest point (or ``target``) and is promoted.
    """
    start = time.monotonic()
    # The cluster's own unit: stopping Debian's postgresql.service wrapper propagates to it
    # but need not wait for it.
    unit = f"postgresql@{facts.pg_version}-main.service"
    run(["/usr/bin/systemctl", "stop", unit], user=None, timeout=300)
    data = Path(facts.data_dir)
    deadline = time.monotonic() + 120
    while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    if not data.exists():
        data.mkdir(mode=0o700, parents=True)
        os.chown(data, *_postgres_ids())
    args = restore_args(facts, target)
    run([*args[:2], "--delta", *args[2:]], timeout=6 * 3600)
    run(["/usr/bin/systemctl", "start", unit], user=None, timeout=300)
    wait_writable(facts)
    return {"restored": True, "target": target or "latest",
            "seconds": round(time.monotonic() - start, 1)}


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def main(argv: list[str] | None = None) -> int:
    """``python -I -m gept.db.backups metrics`` (the cron)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["metrics"]:
        sys.stderr.write("usage: python -m gept.db.backups metrics\n")
        return 2
    try:
        metrics(BackupFacts.load())
    except (BackupError, OSError) as exc:
        sys.stderr.write(f"gept backups: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
