"""PostgreSQL streaming replication, as the deploys and the host gate both write it.

One place builds what a standby streams with (``primary_conninfo``, its slot), so the
deploy (``deploys/tasks/standby.py``) and the gate's switchover actions
(``gept.gate.standby``) write byte-identical files and a converge after a switchover
changes nothing. Paths follow Debian's cluster layout.

Example:
    >>> print(standby_conf("ampere", "ampere", "ampere-standby").splitlines()[2][:41])
    primary_conninfo = 'host=ampere port=5432
"""

from __future__ import annotations

import re

REPLICATION_ROLE = "gept_replication"


def slot_name(host_name: str) -> str:
    """The physical replication slot (and application_name) of standby ``host_name``.

    Example:
        >>> slot_name("ampere-standby")
        'gept_ampere_standby'
    """
    return "gept_" + re.sub(r"[^a-z0-9]", "_", host_name.lower())


def data_dir(version: int | str = 15) -> str:
    """The cluster's data directory."""
    return f"/var/lib/postgresql/{version}/main"


def conf_dir(version: int | str = 15) -> str:
    """The cluster's configuration directory."""
    return f"/etc/postgresql/{version}/main"


def tls_dir(version: int | str = 15) -> str:
    """The host certificate, key, CA and the replication passfile of the cluster."""
    return f"{conf_dir(version)}/tls"


def standby_conf_path(version: int | str = 15) -> str:
    """The conf.d fragment that makes a cluster stream from a primary."""
    return f"{conf_dir(version)}/conf.d/gept-standby.conf"


def unit(version: int | str = 15) -> str:
    """The cluster's systemd unit."""
    return f"postgresql@{version}-main.service"


def primary_conninfo(primary_address: str, standby_host: str, version: int | str = 15,
                     port: int = 5432) -> str:
    """Libpq options a standby streams with: TLS verified against the internal CA, its own
    certificate as client certificate, the password in a 0600 passfile (never here).
    """
    folder = tls_dir(version)
    return (f"host={primary_address} port={int(port)} user={REPLICATION_ROLE} "
            f"passfile={folder}/replication.pgpass sslmode=verify-full "
            f"sslrootcert={folder}/ca.crt sslcert={folder}/server.crt "
            f"sslkey={folder}/server.key application_name={slot_name(standby_host)} "
            "connect_timeout=5")


def standby_conf(primary: str, primary_address: str, standby_host: str,
                 version: int | str = 15, port: int = 5432) -> str:
    """The fragment of standby ``standby_host`` streaming from ``primary``."""
    conninfo = primary_conninfo(primary_address, standby_host, version, port)
    return (f"# Managed by GePT (gept.db.replication): this host is a streaming standby of "
            f"{primary}.\n# The password is in the passfile, never here.\n"
            f"primary_conninfo = '{conninfo}'\n"
            f"primary_slot_name = '{slot_name(standby_host)}'\n")


def parse_lsn(text: str) -> int:
    """A WAL location (``16/B374D848``) as an integer.

    Example:
        >>> parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
        True
    """
    hi, lo = text.strip().split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


# ------------------------------------------------------------------ lag metrics (textfile)

PRIMARY_QUERY = (
    "SELECT 'standby', application_name, state, "
    "coalesce(extract(epoch FROM replay_lag), 0), "
    "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) "
    "FROM pg_stat_replication WHERE NOT pg_is_in_recovery() "
    "UNION ALL SELECT 'slot', slot_name, active::text, 0, 0 FROM pg_replication_slots "
    "WHERE slot_type = 'physical'")
STANDBY_QUERY = (
    "SELECT pg_is_in_recovery(), "
    "(SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'), "
    "CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
    "THEN 0 ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END")


def render_metrics(standby_row: list[str] | None, rows: list[list[str]], now: float) -> str:
    """Replication metrics for node_exporter's textfile collector.

    ``standby_row``: :data:`STANDBY_QUERY`'s one row (``None``: the cluster did not
    answer); ``rows``: :data:`PRIMARY_QUERY`'s rows (on a standby: its slots only).

    Example:
        >>> text = render_metrics(["f", "0", "0"], [
        ...     ["standby", "gept_ampere_standby", "streaming", "0.004", "0"],
        ...     ["slot", "gept_ampere_standby", "true", "0", "0"]], 1.0)
        >>> 'gept_postgres_replication_lag_seconds{standby="gept_ampere_standby"} 0.004' in text
        True
    """
    lines = [f"# gept replication, written {int(now)}"]
    seen: set[str] = set()

    def gauge(name: str, value: float, help_: str, labels: str = "") -> None:
        if name not in seen:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge"])
            seen.add(name)
        lines.append(f"{name}{labels} {value:.15g}")

    gauge("gept_postgres_replication_up", 0 if standby_row is None else 1,
          "1 when the local cluster answered the replication queries.")
    gauge("gept_postgres_replication_metrics_timestamp_seconds", now,
          "Unix time these replication metrics were written.")
    if standby_row is None:
        return "\n".join(lines) + "\n"
    primary = standby_row[0] == "f"
    gauge("gept_postgres_is_primary", 1 if primary else 0,
          "1 when the local cluster accepts writes (not in recovery).")
    if not primary:
        gauge("gept_postgres_standby_streaming", float(standby_row[1]),
              "1 when this standby's WAL receiver is streaming from a primary.")
        gauge("gept_postgres_standby_replay_delay_seconds", float(standby_row[2]),
              "Seconds since the last replayed transaction while WAL waits to be replayed.")
    slots = [r for r in rows if r[0] == "slot"]
    standbys = [r for r in rows if r[0] == "standby"]
    if primary:
        gauge("gept_postgres_replication_slots", len(slots),
              "Physical replication slots (one per standby the primary keeps WAL for).")
        gauge("gept_postgres_replication_standbys_streaming",
              sum(1 for r in standbys if r[2] == "streaming"),
              "Standbys streaming from this primary.")
        for r in standbys:
            label = f'{{standby="{r[1]}"}}'
            gauge("gept_postgres_replication_lag_seconds", float(r[3]),
                  "replay_lag of each standby (pg_stat_replication), seconds.", label)
            gauge("gept_postgres_replication_lag_bytes", float(r[4]),
                  "WAL bytes written here and not yet replayed by each standby.", label)
        for r in slots:
            gauge("gept_postgres_replication_slot_active", 1 if r[2] == "true" else 0,
                  "1 when a standby is connected to its slot.", f'{{slot="{r[1]}"}}')
    return "\n".join(lines) + "\n"


def _psql_rows(sql: str) -> list[list[str]]:
    import subprocess

    out = subprocess.run(
        ["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/psql", "-X", "-q", "-A", "-t",
         "-F", "|", "-d", "postgres", "-c", sql], capture_output=True, text=True, timeout=20,
        check=True, cwd="/", stdin=subprocess.DEVNULL).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def metrics(textfile_dir: str = "/var/lib/gept/textfile") -> str:
    """Collect and write ``gept_replication.prom`` (as root, cron); returns the text."""
    import os
    import subprocess
    import time
    from pathlib import Path

    try:
        standby_row: list[str] | None = _psql_rows(STANDBY_QUERY)[0]
        rows = _psql_rows(PRIMARY_QUERY)
    except (subprocess.SubprocessError, OSError, IndexError):
        standby_row, rows = None, []
    text = render_metrics(standby_row, rows, time.time())
    path = Path(textfile_dir) / "gept_replication.prom"
    tmp = path.with_name(".gept_replication.prom.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    tmp.replace(path)
    return text


if __name__ == "__main__":  # python -I -m gept.db.replication metrics [textfile_dir]
    import sys

    if sys.argv[1:2] != ["metrics"]:
        sys.stderr.write("usage: python -m gept.db.replication metrics [textfile_dir]\n")
        sys.exit(2)
    sys.stdout.write(metrics(*sys.argv[2:3]))
