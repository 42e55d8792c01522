"""The gate's replication actions: fence a primary, promote a standby, demote a primary
cleanly into a standby of its peer. Each runs as root on its host after the gate verified
a person's approval (``gept.gate.__main__``); PostgreSQL's own tools do the work
(``systemctl``, ``pg_ctlcluster promote``, ``pg_controldata``, ``IDENTIFY_SYSTEM`` on a
replication connection), nothing replicates or elects by our own protocol.

The host's database peers come from ``/etc/gept/host.json`` (``db_peers``: name -> address,
written by the deploys), never from the caller: ``--peer`` must be one of them.

Example:
    $ sudo -n gept-gate promote-standby --plan-hash H --approval A          # on the standby
    $ sudo -n gept-gate demote-primary --peer ampere-standby --plan-hash H --approval A
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from gept.db import replication
from gept.guards.approval import Approval

HOST_FILE = Path("/etc/gept/host.json")


class ReplicationFailed(Exception):
    """The action ran and PostgreSQL did not end in the expected state."""


def _facts() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(HOST_FILE.read_text())
    return data


def _version() -> str:
    return str(_facts().get("postgres_version") or 15)


def _peers() -> dict[str, str]:
    peers = _facts().get("db_peers") or {}
    return {str(k): str(v) for k, v in dict(peers).items()}


def _sh(argv: list[str], timeout: float = 120, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise ReplicationFailed(f"{' '.join(argv)} exited {proc.returncode}: "
                                f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc.stdout.strip()


def _psql(sql: str, conninfo: str = "dbname=postgres", timeout: float = 20) -> str:
    return _sh(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/psql", "-X", "-q",
                "-A", "-t", "-d", conninfo, "-c", sql], timeout=timeout)


def in_recovery() -> bool | None:
    """``pg_is_in_recovery()`` of the local cluster; ``None`` when it does not answer."""
    try:
        return _psql("SELECT pg_is_in_recovery()", timeout=10) == "t"
    except (ReplicationFailed, subprocess.SubprocessError):
        return None


def _write_as_postgres(path: str, text: str, mode: int) -> None:
    import pwd

    pw = pwd.getpwnam("postgres")
    tmp = Path(path + ".gept-tmp")
    tmp.write_text(text)
    os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.chmod(tmp, mode)
    tmp.replace(path)


def fence_postgres(_a: Approval, _args: dict[str, str]) -> str:
    """Stop the local PostgreSQL and mask it: nothing (boot, a deploy, the wrapper unit)
    starts it again until a person re-seeds it as a standby (``decide`` in the deploys).
    """
    unit = replication.unit(_version())
    _sh(["/usr/bin/systemctl", "stop", unit], timeout=180)
    _sh(["/usr/bin/systemctl", "mask", unit])
    state = _sh(["/usr/bin/systemctl", "is-active", unit], check=False)
    if state == "active":
        raise ReplicationFailed(f"{unit} is still active after stop")
    return f"{unit} stopped and masked ({state})"


def promote_standby(_a: Approval, _args: dict[str, str]) -> str:
    """Promote the local standby (``pg_ctlcluster promote``), wait until it accepts writes,
    make a replication slot for each database peer (so the old primary can follow), and
    drop the standby fragment (a primary streams from no one).
    """
    version = _version()
    if in_recovery() is not True:
        raise ReplicationFailed("this cluster is not a standby in recovery: nothing promoted")
    _sh(["/usr/bin/pg_ctlcluster", version, "main", "promote"], timeout=120)
    deadline = time.monotonic() + 60
    while in_recovery() is not False:
        if time.monotonic() > deadline:
            raise ReplicationFailed("promoted, but still in recovery after 60 s")
        time.sleep(0.5)
    made = []
    for name in sorted(_peers()):
        slot = replication.slot_name(name)
        created = _psql(f"SELECT count(pg_create_physical_replication_slot('{slot}')) "
                        f"FROM (SELECT 1) s WHERE NOT EXISTS (SELECT FROM "
                        f"pg_replication_slots WHERE slot_name = '{slot}')")
        if created == "1":
            made.append(slot)
    conf = Path(replication.standby_conf_path(version))
    if conf.exists():
        conf.unlink()
        _sh(["/usr/bin/pg_ctlcluster", version, "main", "reload"])
    return json.dumps({"promoted": True, "slots_created": made})


def checkpoint_lsn(version: str) -> tuple[str, str]:
    """``(cluster state, latest checkpoint location)`` from ``pg_controldata``."""
    out = _sh(["/usr/sbin/runuser", "-u", "postgres", "--",
               f"/usr/lib/postgresql/{version}/bin/pg_controldata",
               replication.data_dir(version)])
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return (fields.get("Database cluster state", "").strip(),
            fields.get("Latest checkpoint location", "").strip())


def peer_received_lsn(address: str, version: str) -> str:
    """The WAL position the peer (a standby) has flushed: ``IDENTIFY_SYSTEM`` over a
    replication connection as gept_replication, TLS as the standbys stream.
    """
    conninfo = replication.primary_conninfo(address, "switchover", version)
    out = _psql("IDENTIFY_SYSTEM", conninfo=conninfo + " dbname=replication replication=true",
                timeout=15)
    return out.split("|")[2]


def demote_primary(_a: Approval, args: dict[str, str]) -> str:
    """Shut the local primary down cleanly, check that the peer received every byte of WAL
    up to the shutdown checkpoint, then start the local cluster as the peer's standby.

    If the peer did not receive it all within 60 s, the local cluster starts again as the
    primary (nothing lost, nothing promoted) and the action fails.
    """
    version = _version()
    peers = _peers()
    peer = args["peer"]
    if peer not in peers:
        raise ReplicationFailed(f"{peer!r} is not a database peer of this host "
                                f"({', '.join(sorted(peers)) or 'none'})")
    if in_recovery() is not False:
        raise ReplicationFailed("this cluster is not a running primary: nothing demoted")
    unit = replication.unit(version)
    _sh(["/usr/bin/systemctl", "stop", unit], timeout=300)  # fast: a clean shutdown
    state, lsn = checkpoint_lsn(version)
    if state != "shut down":
        _sh(["/usr/bin/systemctl", "start", unit], timeout=120)
        raise ReplicationFailed(f"the cluster did not shut down cleanly ({state!r})")
    deadline = time.monotonic() + 60
    received = ""
    while True:
        try:
            received = peer_received_lsn(peers[peer], version)
            if replication.parse_lsn(received) > replication.parse_lsn(lsn):
                break
        except (ReplicationFailed, ValueError, IndexError, subprocess.SubprocessError):
            pass
        if time.monotonic() > deadline:
            _sh(["/usr/bin/systemctl", "start", unit], timeout=120)
            raise ReplicationFailed(f"{peer} received WAL up to {received or 'unknown'}, not "
                                    f"past the shutdown checkpoint {lsn}: started again as "
                                    "the primary")
        time.sleep(0.5)
    me = str(_facts().get("identity", "")).split("/")[-1]
    _write_as_postgres(replication.standby_conf_path(version),
                       replication.standby_conf(peer, peers[peer], me, version), 0o644)
    _write_as_postgres(f"{replication.data_dir(version)}/standby.signal", "", 0o600)
    _sh(["/usr/bin/systemctl", "start", unit], timeout=120)
    return json.dumps({"demoted": True, "checkpoint": lsn, "peer": peer,
                       "peer_received": received})
