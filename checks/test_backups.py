"""Backups: WAL archiving, the pgBackRest repository off the database hosts, the metrics
and the weekly restore drill (``deploys/tasks/backups.py``).

Database hosts are Ampere and the standbys (``db_standby``); the repository host is
``backup_repo_host`` (the lab: hydra; production has none: the repository is a bucket).
A check that does not apply to a host's role is skipped with the reason.
"""

from __future__ import annotations

import json
import time

import pytest
from checklib import Target


def _is_db(t: Target) -> bool:
    return "ampere" in t.groups or "db_standby" in t.groups


def _is_repo(t: Target) -> bool:
    return bool(t.get("backup_repo_host")) and t.name == t.get("backup_repo_host")


def _db_only(t: Target) -> None:
    if not _is_db(t):
        pytest.skip(f"{t.name} is not a database host")


def _psql(t: Target, sql: str) -> str:
    result = t.run(f"runuser -u postgres -- psql -XAtq -d postgres -c \"{sql}\"")
    assert result.rc == 0, f"psql on {t.name} failed: {result.stderr.strip()[-300:]}"
    return str(result.stdout).strip()


def _info(t: Target) -> list[dict[str, object]]:
    stanza = t.get("backup_stanza")
    user = "pgbackrest" if _is_repo(t) else "postgres"
    result = t.run(f"cd / && runuser -u {user} -- pgbackrest --stanza={stanza} "
                   "--output=json info")
    assert result.rc == 0, (f"pgbackrest info on {t.name} failed (repository unreachable?): "
                            f"{(result.stderr or result.stdout).strip()[-400:]}")
    stanzas: list[dict[str, object]] = json.loads(result.stdout)
    return stanzas


def test_wal_archiving_configured(target: Target) -> None:
    """PostgreSQL archives its WAL with pgBackRest."""
    _db_only(target)
    assert _psql(target, "SHOW archive_mode") == "on", "archive_mode is not on (restart needed?)"
    command = _psql(target, "SHOW archive_command")
    assert "pgbackrest" in command, f"archive_command is {command!r}, not pgBackRest's"
    assert "archive-push" in command, f"archive_command is {command!r}, not archive-push"
    timeout = _psql(target, "SHOW archive_timeout")
    assert timeout in ("30s", "30"), f"archive_timeout is {timeout} (RPO target: 30 s)"


def test_wal_archive_healthy(target: Target) -> None:
    """The primary's last WAL archive attempt succeeded."""
    _db_only(target)
    if _psql(target, "SELECT pg_is_in_recovery()") == "t":
        pytest.skip(f"{target.name} is a standby: its archiver is idle until promoted")
    row = _psql(target, "SELECT coalesce(last_archived_time::text, ''), "
                        "coalesce(last_failed_time::text, ''), "
                        "last_failed_time > last_archived_time FROM pg_stat_archiver")
    archived, failed, failing = [*row.split("|"), "", "", ""][:3]
    assert archived, "no WAL segment has ever been archived"
    assert failing != "t", f"the last archive attempt failed ({failed}; last success {archived})"


def test_repository_has_a_full_backup(target: Target) -> None:
    """The repository is reachable and holds a full backup of the stanza."""
    if not (_is_db(target) or _is_repo(target)):
        pytest.skip(f"{target.name} is neither a database host nor the repository host")
    stanzas = _info(target)
    stanza = next((s for s in stanzas if s.get("name") == target.get("backup_stanza")), None)
    assert stanza, f"the repository has no stanza {target.get('backup_stanza')}"
    status = stanza.get("status") or {}
    assert isinstance(status, dict), f"unexpected pgbackrest info status {status!r}"
    assert status.get("code") == 0, f"pgBackRest reports the stanza not ok: {status}"
    backups = stanza.get("backup") or []
    assert isinstance(backups, list)
    assert any(b.get("type") == "full" for b in backups), "no full backup in the repository"


def test_repository_is_off_the_database_hosts(target: Target) -> None:
    """The repository is not on this database host."""
    _db_only(target)
    path = target.get("backup_repo_path")
    conf = target.file("/etc/pgbackrest/pgbackrest.conf")
    assert conf.exists, "/etc/pgbackrest/pgbackrest.conf is missing"
    text = target.run("cat /etc/pgbackrest/pgbackrest.conf").stdout
    assert "repo1-host=" in text or "repo1-type=s3" in text, \
        "pgbackrest.conf keeps the repository on this host"
    assert not target.file(f"{path}/backup").is_directory, \
        f"{path}/backup exists on a database host"


def test_repository_host_serves_the_repository(target: Target) -> None:
    """The repository host runs pgBackRest's TLS server; the repository is private."""
    if not _is_repo(target):
        pytest.skip(f"{target.name} is not the repository host")
    assert target.host.service("pgbackrest-server").is_running, \
        "pgbackrest-server.service is not running"
    repo = target.file(target.get("backup_repo_path"))
    assert repo.is_directory, f"{target.get('backup_repo_path')} is not a directory"
    assert repo.user == "pgbackrest", f"the repository is owned by {repo.user}, not pgbackrest"
    assert repo.mode is not None, "cannot read the repository's mode"
    assert not repo.mode & 0o007, f"repository is world-accessible (mode {repo.mode:04o})"
    assert target.file("/etc/cron.d/gept-backup").is_file, "the backup schedule is missing"


def test_pgbackrest_key_private(target: Target) -> None:
    """pgBackRest's TLS key is 0600, owned by the account that runs it."""
    if not (_is_db(target) or _is_repo(target)):
        pytest.skip(f"{target.name} runs no pgBackRest")
    key = target.file("/etc/pgbackrest/tls/host.key")
    assert key.exists, "/etc/pgbackrest/tls/host.key is missing"
    assert key.mode == 0o600, f"host.key mode is {key.mode:04o}, not 0600"
    assert key.user == ("pgbackrest" if _is_repo(target) else "postgres")


def test_backup_metrics_fresh(target: Target) -> None:
    """The backup metrics are written every minute and the repository reads ok."""
    _db_only(target)
    path = "/var/lib/gept/textfile/gept_backup.prom"
    metrics = target.file(path)
    assert metrics.exists, f"{path} is missing (cron /etc/cron.d/gept-backup-metrics)"
    age = time.time() - float(target.run(f"stat -c %Y {path}").stdout.strip())
    assert age < 300, f"{path} is {age:.0f} s old (written every minute)"
    text = target.run(f"cat {path}").stdout
    assert "gept_backup_repository_ok 1" in text, "the metrics say the repository is not ok"


def test_restore_drill_scheduled(target: Target) -> None:
    """The weekly restore drill is scheduled on the standby, and its last run passed."""
    if "db_standby" not in target.groups:
        pytest.skip(f"{target.name} is not a standby (the drill runs there)")
    timer = target.host.service("gept-restore-drill.timer")
    assert timer.is_enabled, "gept-restore-drill.timer is not enabled"
    assert timer.is_running, "gept-restore-drill.timer is not active"
    result = target.run("cat /var/lib/gept/textfile/gept_restore_drill.prom")
    if result.rc == 0:
        assert "gept_restore_drill_ok 1" in result.stdout, \
            "the last restore drill failed (run the restore-drill runbook for its report)"


def test_standby_metrics_served_over_tls_only(target: Target) -> None:
    """The standby's node_exporter answers over TLS (internal CA) and not in plain HTTP."""
    if "db_standby" not in target.groups:
        pytest.skip(f"{target.name} is not a standby")
    port = target.get("node_exporter_port")
    name = target.get("lab_internal_address") if "lab_internal_address" in target.data \
        else target.name
    tls = target.run(f"curl -sS -m 10 --cacert /etc/pgbackrest/tls/ca.crt "
                     f"https://{name}:{port}/metrics")
    assert tls.rc == 0, f"https://{name}:{port}/metrics: {tls.stderr.strip()}"
    assert "node_textfile_scrape_error" in tls.stdout, "no textfile collector in the metrics"
    plain = target.run(f"curl -sS -m 10 http://{name}:{port}/metrics")
    assert "node_textfile_scrape_error" not in plain.stdout, "metrics served in plain HTTP"
