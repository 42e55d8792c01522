"""Backups with pgBackRest: WAL archived continuously, full and differential backups on a
schedule, retention, compression (zstd) and encryption (AES-256), to a repository that is
never on a database host; the weekly restore drill; backup and archive metrics.

Who does what (``inventory/group_data/all.py``, "Backups"):

- **Database hosts** (``ampere``, ``db_standby``): PostgreSQL's ``archive_command`` pushes each
  WAL segment to the repository (``archive_timeout`` 30 s bounds the loss); the standbys'
  ``restore_command`` and every restore read it back. With a repository host, each database
  host also runs pgBackRest's TLS server so that the repository host can take backups of it.
- **The repository host** (``backup_repo_host``, the lab: hydra): keeps the encrypted
  repository, runs pgBackRest's TLS server for the database hosts, creates the stanza, takes
  the first full backup and the scheduled ones (cron, user ``pgbackrest``).
- **Without a repository host** (production): the repository is the S3 bucket of
  ``backup_s3``; the primary (``db_primary``) encrypts and takes the backups itself.

Every connection between hosts is TLS with the internal CA's certificates
(``deploys/tls.py``), each server accepting only the named hosts' certificates.

The restore drill (``gept-op restore-drill``, :mod:`gept.db.drill`) runs on a standby host,
weekly from a timer and on demand from the ``restore-drill`` runbook.
"""

from __future__ import annotations

import json
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from deploys.facts.gept import BackupCount
from deploys.managed import Dir, directories_present, files_present, literal, rendered
from deploys.secrets import secret
from deploys.tasks import standby
from deploys.tls import host_certificate_for

TEXTFILE_DIR = "/var/lib/gept/textfile"
BACKUP_JSON = "/etc/gept/backup.json"
REPO_USER = "pgbackrest"


def database_hosts() -> list[str]:
    """The inventory's database hosts' names (Ampere, then the standbys)."""
    return [h.name for h in standby.database_hosts()]


def primary_address(data: Any) -> str:
    """The address of the host ``db_primary`` names (what the repository host backs up)."""
    for h in standby.database_hosts():
        if standby.db_id(h) == data.db_primary:
            return standby.db_address(h)
    raise RuntimeError(f"db_primary={data.db_primary!r} names no database host of the "
                       "inventory")


def backup_facts(data: Any, role: str) -> dict[str, Any]:
    """``/etc/gept/backup.json``: what the host-side drill and metrics need to know.

    Example:
        >>> class D(dict):
        ...     __getattr__ = dict.get
        >>> backup_facts(D(backup_stanza="gept", postgres_version=15, postgres_port=5432,
        ...     db_name="osrs_data", restore_drill_port=5499, db_probe_user="gept_probe",
        ...     restore_drill_dir="/var/lib/gept/restore-drill"), "database")["data_dir"]
        '/var/lib/postgresql/15/main'
    """
    version = int(data.postgres_version)
    return {"stanza": data.backup_stanza, "role": role, "pg_version": version,
            "data_dir": f"/var/lib/postgresql/{version}/main",
            "pg_bin": f"/usr/lib/postgresql/{version}/bin",
            "port": int(data.postgres_port), "db_name": data.db_name,
            "probe_user": data.db_probe_user,
            "drill_port": int(data.restore_drill_port), "drill_dir": data.restore_drill_dir,
            "textfile_dir": TEXTFILE_DIR}


@deploy("Back up PostgreSQL with pgBackRest")
def configure_backups(roles: list[str]) -> None:
    """pgBackRest on the database hosts and the repository host (nothing elsewhere)."""
    data = host.data
    repo_host = str(data.get("backup_repo_host") or "")
    is_db = "ampere" in roles or "db_standby" in roles
    is_repo = bool(repo_host) and host.name == repo_host
    if not (is_db or is_repo):
        return
    if is_db and is_repo:
        raise RuntimeError(f"backup_repo_host={repo_host!r} is a database host: the "
                           "repository must live off every database host")
    role = "repository" if is_repo else "database"
    user = REPO_USER if is_repo else "postgres"
    apt.packages(name="Install pgBackRest", packages=["pgbackrest"], no_recommends=True)
    if is_repo:
        server.user(name="Create the repository's account", user=REPO_USER, system=True,
                    home=data.backup_repo_path, shell="/usr/sbin/nologin", create_home=False)
    directories_present(name="Create pgBackRest's directories", dirs=[
        Dir("/etc/pgbackrest", "0750", "root", user),
        Dir("/etc/pgbackrest/tls", "0750", "root", user),
        Dir("/var/log/pgbackrest", "0750", user, user),
        *([Dir(data.backup_repo_path, "0750", user, user)] if is_repo else []),
        Dir(TEXTFILE_DIR, "0755"),
        *([Dir(data.restore_drill_dir, "0700", "postgres", "postgres")] if is_db else [])])

    cert = host_certificate_for(data, host.name, [str(data.get("lab_internal_address")
                                                      or host.name)])
    s3 = dict(data.get("backup_s3") or {}) if not repo_host else {}
    # Encryption happens where the repository is written: its host, or each database
    # host when the repository is the bucket.
    needs_cipher = is_repo or bool(s3)
    context: dict[str, Any] = {
        "role": role, "s3": s3,
        "repo_desc": (f"on {repo_host} (TLS)" if repo_host else
                      f"s3://{s3.get('bucket', '?')} at {s3.get('endpoint', '?')}"),
        "cipher_pass": secret("backup_cipher_pass", data) if needs_cipher else "",
        "s3_key": secret("backup_s3_key", data) if s3 else "",
        "s3_key_secret": secret("backup_s3_key_secret", data) if s3 else "",
        # Who may call this host's TLS server: the repository host calls the databases
        # (backups); the databases call the repository (archive-push/get, restores).
        "primary_address": primary_address(data) if is_repo else "",
        "tls_clients": (database_hosts() if is_repo else [repo_host] if repo_host else []),
    }
    configured = files_present(name="Configure pgBackRest (TLS certificates, stanza)", files=[
        literal(cert.ca, "/etc/pgbackrest/tls/ca.crt", "0644"),
        literal(cert.cert, "/etc/pgbackrest/tls/host.crt", "0644"),
        literal(cert.key, "/etc/pgbackrest/tls/host.key", "0600", user, user),
        rendered("pgbackrest/pgbackrest.conf.j2", "/etc/pgbackrest/pgbackrest.conf", "0640",
                 "root", user, **context),
        literal(json.dumps(backup_facts(data, role), indent=2, sort_keys=True) + "\n",
                BACKUP_JSON, "0644"),
    ])
    if repo_host:
        unit = files_present(name="Install pgBackRest's TLS server unit", files=[
            rendered("pgbackrest/pgbackrest-server.service.j2",
                     "/etc/systemd/system/pgbackrest-server.service", account=user,
                     what=("backup repository" if is_repo else "PostgreSQL data directory"),
                     peers=", ".join(context["tls_clients"]))])
        systemd.daemon_reload(name="Reload systemd for pgBackRest's TLS server unit",
                              _if=unit.did_change)
        systemd.service(name="Run pgBackRest's TLS server", service="pgbackrest-server.service",
                        running=True, enabled=True)
        systemd.service(name="Restart pgBackRest's TLS server for its new configuration",
                        service="pgbackrest-server.service", restarted=True,
                        _if=lambda: configured.did_change() or unit.did_change())

    primary = is_db and standby.db_id(host) == data.db_primary
    takes_backups = is_repo or (not repo_host and primary)
    if takes_backups:
        stanza = data.backup_stanza
        run_as = f"runuser -u {user} -- pgbackrest --stanza={stanza}"
        # First converge only (a repository that already has the stanza and a backup is
        # left alone: the schedule takes the next one).
        fresh = host.get_fact(BackupCount, user=user, stanza=stanza) == 0
        server.shell(name=f"Create the {stanza} stanza and take the first full backup",
                     commands=[f"{run_as} stanza-create && {run_as} --type=full backup"],
                     _chdir="/", _if=lambda: fresh)
        files_present(name="Schedule the backups (full weekly, differential daily)", files=[
            rendered("pgbackrest/backup.cron.j2", "/etc/cron.d/gept-backup", account=user)])
    if is_db:
        python = f"{data.app_root}/current/venv/bin/python"
        timer = files_present(name="Backup metrics every minute; the weekly restore drill",
                              files=[
            rendered("pgbackrest/metrics.cron.j2", "/etc/cron.d/gept-backup-metrics",
                     python=python),
            rendered("pgbackrest/restore-drill.service.j2",
                     "/etc/systemd/system/gept-restore-drill.service"),
            rendered("pgbackrest/restore-drill.timer.j2",
                     "/etc/systemd/system/gept-restore-drill.timer")])
        systemd.daemon_reload(name="Reload systemd for the restore drill's units",
                              _if=timer.did_change)
        # The drill runs where it cannot touch the live primary: on the standbys.
        systemd.service(name="Schedule the weekly restore drill (standbys)",
                        service="gept-restore-drill.timer", running=not primary,
                        enabled=not primary)
