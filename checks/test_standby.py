"""The database hosts' replication roles (``deploys/tasks/standby.py``): the primary named by
``db_primary`` accepts writes and every other database host streams from it over TLS; the
network reaches PostgreSQL only from the database peers and only over TLS; Hydra has a
tunnel to every database host. A check that does not apply to a host's role is skipped.
"""

from __future__ import annotations

import shlex
import time

import pytest
from checklib import Target

from gept.db.replication import slot_name


def _is_db(t: Target) -> bool:
    return "ampere" in t.groups or "db_standby" in t.groups


def _primary(t: Target) -> str:
    return str(t.data.get("db_primary", "ampere"))


def _db_only(t: Target) -> None:
    if not _is_db(t):
        pytest.skip(f"{t.name} is not a database host")


def _psql(t: Target, sql: str) -> str:
    result = t.run("cd / && runuser -u postgres -- psql -XAtq -F '|' -d postgres -c "
                   + shlex.quote(sql))
    assert result.rc == 0, f"psql on {t.name} failed: {result.stderr.strip()[-300:]}"
    return str(result.stdout).strip()


def _version(t: Target) -> str:
    return str(t.get("postgres_version"))


def test_replication_role_is_the_inventorys(target: Target) -> None:
    """The database host named by db_primary accepts writes; every other one is a standby."""
    _db_only(target)
    recovery = _psql(target, "SELECT pg_is_in_recovery()")
    signal = target.file(f"/var/lib/postgresql/{_version(target)}/main/standby.signal").exists
    if target.name == _primary(target):
        assert recovery == "f", f"{target.name} is db_primary but in recovery (a standby)"
        assert not signal, f"{target.name} is db_primary but has standby.signal"
    else:
        assert recovery == "t", (f"{target.name} is not db_primary ({_primary(target)}) but "
                                 "accepts writes: two primaries")
        assert signal, f"{target.name} is a standby without standby.signal"


def test_primary_streams_to_every_standby(target: Target) -> None:
    """The primary has a slot per standby, each active and streaming over TLS."""
    _db_only(target)
    if target.name != _primary(target):
        pytest.skip(f"{target.name} is a standby")
    rows = _psql(target, "SELECT s.slot_name, s.active, r.state, coalesce(l.ssl, false), "
                         "coalesce(extract(epoch FROM r.replay_lag), 0) "
                         "FROM pg_replication_slots s "
                         "LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
                         "LEFT JOIN pg_stat_ssl l ON l.pid = s.active_pid")
    slots = [line.split("|") for line in rows.splitlines() if line]
    assert slots, "the primary has no replication slot: no standby streams from it"
    for slot, active, state, ssl, lag in slots:
        assert active == "t", f"slot {slot}: no standby connected"
        assert state == "streaming", f"slot {slot}: {state or 'not streaming'}"
        assert ssl == "t", f"{slot} streams without TLS"
        assert float(lag) < 30, f"{slot} replays {float(lag):.1f} s behind"


def test_standby_streams_from_the_primary(target: Target) -> None:
    """A standby's WAL receiver streams from db_primary with verify-full TLS, no password
    in its settings, and has replayed what it received."""
    _db_only(target)
    if target.name == _primary(target):
        pytest.skip(f"{target.name} is the primary")
    row = _psql(target, "SELECT status, slot_name, conninfo FROM pg_stat_wal_receiver")
    assert row, "the WAL receiver is not running: the standby streams from no one"
    status, slot, conninfo = row.split("|", 2)
    assert status == "streaming", f"WAL receiver {status}"
    assert slot == slot_name(target.name)
    assert "sslmode=verify-full" in conninfo, conninfo
    assert "password=" not in conninfo, "a password in primary_conninfo"
    conf = target.run(f"cat /etc/postgresql/{_version(target)}/main/conf.d/gept-standby.conf")
    assert conf.rc == 0, "the standby fragment is missing"
    settings = [line for line in conf.stdout.splitlines() if not line.startswith("#")]
    assert not any("password" in line.replace("passfile", "") for line in settings), (
        "a password in the standby fragment")
    delay = _psql(target, "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
                          " THEN 0 ELSE extract(epoch FROM now() - "
                          "pg_last_xact_replay_timestamp()) END")
    assert float(delay or 0) < 30, f"received WAL waits {delay} s to be replayed"


def test_postgres_reachable_beyond_loopback_only_over_tls_from_peers(target: Target) -> None:
    """PostgreSQL requires TLS from other hosts (pg_hba hostssl), and the firewall admits
    its port only from named peers."""
    _db_only(target)
    assert _psql(target, "SHOW ssl") == "on"
    version, port = _version(target), int(target.get("postgres_port"))
    hba = target.run(f"cat /etc/postgresql/{version}/main/pg_hba.conf").stdout
    for line in hba.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "host":
            assert fields[3] in ("127.0.0.1/32", "::1/128"), f"plain TCP beyond loopback: {line}"
    nft = target.run("cat /etc/gept-firewall.nft").stdout
    for line in nft.splitlines():
        if "dport" in line and str(port) in line.split("dport", 1)[1].split("accept")[0]:
            assert "saddr" in line, f"the firewall opens {port} to everyone: {line.strip()}"


def test_replication_passfile_private(target: Target) -> None:
    """The replication password is readable by postgres only."""
    _db_only(target)
    f = target.file(f"/etc/postgresql/{_version(target)}/main/tls/replication.pgpass")
    assert f.is_file, "the replication passfile is missing"
    assert (f.user, f.mode) == ("postgres", 0o600), (f.user, f.mode)
    key = target.file(f"/etc/postgresql/{_version(target)}/main/tls/server.key")
    assert key.is_file, "the TLS key is missing"
    assert key.mode == 0o600, f"{key.mode:o}"


def test_replication_metrics_fresh(target: Target) -> None:
    """The replication metrics (lag, streaming standbys) were written in the last 3 min."""
    _db_only(target)
    path = "/var/lib/gept/textfile/gept_replication.prom"
    result = target.run(f"stat -c %Y {path}")
    assert result.rc == 0, f"{path} is missing (cron gept-replication-metrics)"
    age = time.time() - int(result.stdout.strip())
    assert age < 180, f"{path} is {age:.0f} s old"
    text = target.run(f"cat {path}").stdout
    assert "gept_postgres_replication_up 1" in text, text[:400]


def test_hydra_tunnels_reach_every_database_host(hydra: Target) -> None:
    """Each database tunnel is active and a PostgreSQL server answers at its far end."""
    base = int(hydra.get("tunnel_local_port"))
    listed = hydra.run("systemctl list-units --all --plain --no-legend 'gept-db-tunnel*'")
    units = sorted({line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
                   | {"gept-db-tunnel.service"})
    for unit in units:
        assert hydra.host.service(unit).is_running, f"{unit} is not running"
    for i in range(len(units)):
        assert hydra.pg_answers(base + i) in ("S", "N"), f"nothing answers on {base + i}"
