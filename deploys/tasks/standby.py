"""The database hosts' roles: one primary (``db_primary`` in the inventory), the others its
PostgreSQL streaming standbys. Nothing home-made: PostgreSQL's own streaming replication
(``pg_basebackup`` seeds a standby, ``standby.signal`` + ``primary_conninfo`` keep it
streaming, a physical replication slot per standby on the primary keeps its WAL), promotion
by ``pg_ctlcluster promote`` through the host gate (``gept.gate.actions``, danger zone
``promote-standby``).

Who reaches whom:

- a standby connects to the primary as ``gept_replication`` (REPLICATION, nothing else),
  over TLS (``sslmode=verify-full`` against the internal CA, with its own host certificate
  as client certificate: pg_hba says ``clientcert=verify-ca``) and a password kept in a
  0600 passfile of the postgres account;
- every client (the engine, the collectors, both inference roles, training) lists *every*
  database host in one libpq connection string with ``target_session_attrs=read-write``
  (:func:`endpoints`): libpq connects to whichever host accepts writes. After a promotion
  nothing is re-pointed: the old primary is fenced (stopped and masked), so the only
  read-write server left is the new one, and each pool's next connection lands there.
  Hydra reaches each database host through its own SSH tunnel (``deploys/tasks/tunnel.py``).

The deploy never changes a host's role on its own (:func:`decide`): it seeds a *fresh*
host as a standby, re-seeds a host that ``promote-standby`` fenced once ``db_primary`` names
another host, and refuses (exit 3) a promoted standby that the inventory still calls a
standby, a standby the inventory calls the primary (promotion is the runbook's, with a
person's approval), and a fenced primary the inventory still calls the primary.

Example:
    >>> decide("ampere-standby", "ampere", {"signal": False, "database": False,
    ...                                     "masked": False, "recovery": False})
    'seed'
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd

from deploys.facts.standby import PostgresReplicationState, ResolvedAddresses
from deploys.managed import Managed, files_present, literal
from gept.db.replication import primary_conninfo, slot_name, standby_conf

EXIT_REFUSED = 3
DATABASE_GROUPS = ("ampere", "db_standby")
CLIENT_CA = "/etc/gept/internal-ca.crt"  # the internal CA, for every client's verify-full


class RoleRefused(Exception):
    """The inventory and the host disagree about the host's replication role."""


def data_dir(data: Any) -> str:
    """The cluster's data directory (Debian's layout)."""
    return f"/var/lib/postgresql/{data.postgres_version}/main"


def tls_dir(data: Any) -> str:
    """Where the host's PostgreSQL certificate, key, CA and replication passfile live."""
    return f"/etc/postgresql/{data.postgres_version}/main/tls"


def standby_conf_path(data: Any) -> str:
    """The conf.d fragment of a standby: where it streams from (absent on the primary)."""
    return f"/etc/postgresql/{data.postgres_version}/main/conf.d/gept-standby.conf"


def unit(data: Any) -> str:
    """The cluster's systemd unit."""
    return f"postgresql@{data.postgres_version}-main.service"


def database_hosts() -> list[Any]:
    """The inventory's database hosts: group ``ampere`` first, then ``db_standby``."""
    out: list[Any] = []
    for group in DATABASE_GROUPS:
        for h in inventory.get_group(group, []):
            if h not in out:
                out.append(h)
    return out


def is_database_host(h: Any = None) -> bool:
    """Whether ``h`` (default: the current host) runs PostgreSQL."""
    h = host if h is None else h
    return any(g in h.groups for g in DATABASE_GROUPS)


def db_id(h: Any) -> str:
    """How ``db_primary`` names ``h``: its ``gept_role`` where the inventory sets one
    (production: hosts are named by address, ``gept_role`` is ``ampere`` /
    ``ampere_standby``), else its inventory name (the lab)."""
    return str(h.data.get("gept_role") or h.name)


def db_address(h: Any) -> str:
    """The name other hosts reach ``h``'s PostgreSQL by (also in its certificate)."""
    return str(h.data.get("db_address") or h.data.get("lab_internal_address") or h.name)


def endpoints(data: Any, current: Any = None) -> list[tuple[str, int]]:
    """``(host, port)`` of every database host as this host's clients reach it.

    A database host reaches itself over loopback and the others by address; a host that
    runs no PostgreSQL (Hydra) reaches each through its SSH tunnel, on consecutive local
    ports from ``tunnel_local_port`` in :func:`database_hosts` order.
    """
    h = host if current is None else current
    dbs = database_hosts()
    if not is_database_host(h):
        return [("127.0.0.1", int(data.tunnel_local_port) + i) for i in range(len(dbs))]
    out = [("127.0.0.1", int(data.postgres_port))]
    out += [(db_address(d), int(data.postgres_port)) for d in dbs if d.name != h.name]
    return out


def tunnel_targets() -> list[tuple[Any, int]]:
    """Hydra's tunnels: each database host with its local port (the first is Ampere's)."""
    base = int(host.data.tunnel_local_port)
    return [(d, base + i) for i, d in enumerate(database_hosts())]


def decide(name: str, primary: str, state: dict[str, Any]) -> str:
    """What the deploy may do with database host ``name``: a pure decision.

    Returns ``primary`` (converge it as the primary), ``standby`` (already streaming:
    converge its settings), ``seed`` (a fresh cluster: clone it from the primary) or
    ``reseed`` (a primary fenced by promote-standby, which the inventory now calls a
    standby: clone it from the new primary, its old data kept aside).

    Raises:
        RoleRefused: the host's actual role and the inventory's disagree in a way only a
            person may settle.

    Example:
        >>> decide("ampere", "ampere", {"signal": False, "masked": False,
        ...                             "database": True, "recovery": False})
        'primary'
        >>> decide("ampere", "ampere-standby", {"signal": False, "masked": True,
        ...                                     "data": True, "recovery": None})
        'reseed'
    """
    standby = bool(state.get("signal")) or state.get("recovery") is True
    if name == primary:
        if state.get("masked"):
            raise RoleRefused(
                f"{name}'s PostgreSQL is fenced (masked by promote-standby): another host "
                f"was promoted; set db_primary to it in the inventory, then converge")
        if standby:
            raise RoleRefused(
                f"{name} is a streaming standby but db_primary names it: the deploy never "
                "promotes; run the promote-standby or switchover runbook (a person's "
                "approval), then converge")
        return "primary"
    if standby:
        return "standby"
    if state.get("masked") and state.get("recovery") is None and (
            state.get("data") or state.get("database")):
        return "reseed"
    if state.get("database"):
        raise RoleRefused(
            f"{name} is a primary holding the database but db_primary is {primary!r}: the "
            "deploy never demotes a running primary; fence it (promote-standby), or set "
            f"db_primary = {name!r} if it was promoted")
    return "seed"


def replication_role(current: Any = None) -> str | None:
    """This database host's decision (:func:`decide`); ``None`` for other hosts.

    A refusal ends the whole run (exit 3) while pyinfra is still planning, with a JSON
    body on stderr, like the danger-zone guard.
    """
    h = host if current is None else current
    if not is_database_host(h):
        return None
    data = h.data
    state = h.get_fact(PostgresReplicationState, version=int(data.postgres_version),
                       database=data.db_name)
    try:
        return decide(db_id(h), str(data.db_primary), state)
    except RoleRefused as exc:
        body = {"error": "replication-role", "host": h.name, "db_primary": data.db_primary,
                "state": state, "reason": str(exc)}
        sys.stderr.write(f"gept-standby: refused on {h.name}: {exc}\n")
        sys.stderr.write(json.dumps(body, default=str) + "\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(EXIT_REFUSED)


def firewall_peers() -> dict[int, list[str]]:
    """Ports open only to named peers (IPv4, as this host resolves their names):

    - PostgreSQL's port on a database host, to the other database hosts;
    - pgBackRest's TLS port (``backup_tls_port``) between the repository host
      (``backup_repo_host``) and the database hosts, both ways (archive pushes in, backups
      out; ``deploys/tasks/backups.py``);
    - node_exporter's port on a standby, to the monitoring host (``deploys/tasks/exporter.py``).
    """
    data = host.data
    wanted: dict[int, list[str]] = {}
    dbs = database_hosts()
    if is_database_host():
        wanted[int(data.postgres_port)] = [db_address(d) for d in dbs if d.name != host.name]
    repo_name = str(data.get("backup_repo_host") or "")
    if repo_name and data.get("backup_tls_port"):
        port = int(data.backup_tls_port)
        repo = inventory.get_host(repo_name, None)
        if host.name == repo_name:
            wanted.setdefault(port, []).extend(db_address(d) for d in dbs)
        elif is_database_host() and repo is not None:
            wanted.setdefault(port, []).append(
                str(repo.data.get("lab_internal_address") or repo.name))
    # node_exporter on a standby (deploys/tasks/exporter.py), to the monitoring host(s).
    if "db_standby" in host.groups and data.get("node_exporter_port"):
        wanted.setdefault(int(data.node_exporter_port), []).extend(
            str(h.data.get("lab_internal_address") or h.name)
            for h in inventory.get_group("ampere", []))
    names = sorted({n for ns in wanted.values() for n in ns})
    if not names:
        return {}
    resolved = host.get_fact(ResolvedAddresses, names=names)
    out = {}
    for port, peers in sorted(wanted.items()):
        addresses = sorted({a for n in peers for a in resolved.get(n, [])})
        if addresses:
            out[port] = addresses
    return out


def tls_files(data: Any) -> list[Managed]:
    """The host's certificate (server and client), key, the CA, and the replication
    passfile; the CA also as ``CLIENT_CA`` for the services' ``verify-full``."""
    from deploys.secrets import secret
    from deploys.tls import host_certificate_for

    names = [db_address(host), "localhost", "127.0.0.1"]
    pair = host_certificate_for(data, host.name, names)
    folder = tls_dir(data)
    pg = {"user": "postgres", "group": "postgres"}
    password = secret("db_password_gept_replication", data)
    out = [
        literal(pair.cert, f"{folder}/server.crt", "0644", **pg),
        literal(pair.key, f"{folder}/server.key", "0600", **pg),
        literal(pair.ca, f"{folder}/ca.crt", "0644", **pg),
        literal(f"*:*:*:gept_replication:{password}\n",
                f"{folder}/replication.pgpass", "0600", **pg),
        # Root's copy, from which the primary sets the role's password (psql variable).
        literal(password + "\n", f"{data.config_dir}/db_password_gept_replication", "0600"),
    ]
    return out + client_ca_files(data)


def client_ca_files(data: Any) -> list[Managed]:
    """The internal CA for the services (any host with a database client)."""
    from deploys.tls import host_certificate_for

    pair = host_certificate_for(data, host.name, [db_address(host)])
    return [literal(pair.ca, CLIENT_CA, "0644")]


def primary_host() -> Any | None:
    """The inventory host ``db_primary`` names, when it is in the inventory."""
    name = str(host.data.db_primary)
    return next((d for d in database_hosts() if db_id(d) == name), None)


@deploy("Configure PostgreSQL streaming replication")
def configure_replication(role: str | None) -> None:
    """The primary keeps a slot per standby; a standby streams from the primary.

    Args:
        role: :func:`replication_role`'s decision for this host.
    """
    data = host.data
    if role is None:
        return
    pg = unit(data)
    psql = "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres"
    python = f"{data.app_root}/current/venv/bin/python"
    # Lag, streaming standbys, slots (gept.db.replication) for node_exporter's textfile
    # collector on every database host; Ampere's Prometheus alerts on them.
    files_present(name="Replication metrics every minute", files=[literal(
        "# Managed by GePT deploys (deploys/tasks/standby.py): replication lag metrics.\n"
        "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"* * * * * root {python} -I -m gept.db.replication metrics /var/lib/gept/textfile "
        f">> {data.log_dir}/replication-metrics.log 2>&1\n",
        "/etc/cron.d/gept-replication-metrics")])
    if role == "primary":
        removed = files.file(name="Remove the standby settings (this host is the primary)",
                             path=standby_conf_path(data), present=False)
        systemd.service(name="Reload PostgreSQL without standby settings", service=pg,
                        reloaded=True, _if=removed.did_change)
        state = host.get_fact(PostgresReplicationState, version=int(data.postgres_version),
                              database=data.db_name)
        have = set(state.get("slots") or [])
        wanted = [slot_name(d.name) for d in database_hosts() if d.name != host.name]
        missing = [s for s in wanted if s not in have]
        if missing:
            # Idempotent at run time too: a standby's clone may have made its slot already.
            names = ", ".join(f"('{slot}')" for slot in missing)
            sql = (f"SELECT pg_create_physical_replication_slot(n) FROM (VALUES {names}) v(n) "
                   "WHERE NOT EXISTS (SELECT FROM pg_replication_slots s "
                   "WHERE s.slot_name = v.n)")
            server.shell(name=f"Create the standbys' replication slots ({', '.join(missing)})",
                         commands=[f"{psql} -c {_q(sql)}"], _chdir="/")
        return
    primary = primary_host()
    address = db_address(primary) if primary is not None else str(data.db_primary)
    slot = slot_name(host.name)
    version, port = int(data.postgres_version), int(data.postgres_port)
    # The same bytes the gate's switchover writes (gept.db.replication).
    conninfo = primary_conninfo(address, host.name, version, port)
    conf = files_present(name="Point the standby at the primary", files=[
        literal(standby_conf(str(data.db_primary), address, host.name, version, port),
                standby_conf_path(data), "0644", "postgres", "postgres")])
    if role in ("seed", "reseed"):
        directory = data_dir(data)
        clear = (f"mv {directory} {directory}.deposed-$(date -u +%Y%m%dT%H%M%SZ)"
                 if role == "reseed" else f"rm -rf {directory}")
        env = f"PGPASSFILE={tls_dir(data)}/replication.pgpass"
        server.shell(
            name=f"Clone the standby from {data.db_primary} (pg_basebackup, slot {slot})",
            commands=[
                f"systemctl unmask {pg}", f"systemctl stop {pg}", clear,
                f"install -d -o postgres -g postgres -m 0700 {directory}",
                # The slot is made here when the primary has none yet (its own operation
                # may run later in this converge): READ_REPLICATION_SLOT says.
                f"if runuser -u postgres -- env {env} psql -XAt "
                f"-d {_q(conninfo + ' dbname=replication replication=true')} "
                f"-c 'READ_REPLICATION_SLOT {slot}' "
                f"| grep -q '^physical'; then create=''; else create='--create-slot'; fi; "
                f"runuser -u postgres -- env {env} pg_basebackup --no-password "
                f"-d {_q(conninfo)} -D {directory} "
                f"-X stream -S {slot} $create -c fast",
                f"runuser -u postgres -- touch {directory}/standby.signal",
                f"systemctl enable --now {pg}"],
            _chdir="/")
        return
    systemd.service(name="Reload PostgreSQL for new standby settings", service=pg,
                    reloaded=True, _if=conf.did_change)


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)
