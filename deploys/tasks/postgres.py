"""PostgreSQL 15 from apt: the ``osrs_data`` database, one role per job (``gept.db.roles``),
client authentication (pg_hba/pg_ident), tuning in a conf.d fragment (reload for reloadable
settings; a restart only inside the ``restart-postgres`` danger zone).

Who connects how (``templates/postgres/pg_hba.conf.j2``):

- the services (``gept_engine``, ``gept_collectors``, ``gept_inference``,
  ``gept_registry``) over loopback TCP with their own passwords (``deploys/tasks/config.py``
  writes the 0600 files; the password reaches PostgreSQL through a psql variable read on the
  host, never argv);
- the owner ``osrs_user`` only from root over the socket (peer, map ``gept_owner``): it has
  no password, so no service and no network client can become it;
- the read-only ``gept_probe`` only from the OS users in ``db_probe_os_users`` (peer, map
  ``gept_probe``): what runbook SQL steps use, without any password;
- from another host (a standby streaming, Ampere's services once another database host is
  the primary) only over TLS (``hostssl``, the host certificate of the internal CA,
  ``deploys/tls.py``) with scram-sha-256; the firewall opens the port to the other
  database hosts only (``deploys/tasks/standby.py``).

Every database host (Ampere, group ``db_standby``) gets the same settings and rules; only
the primary (``db_primary``) creates roles and sets passwords: a standby replays them.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, postgres, server, systemd

from deploys.facts.gept import PgRoles, PostgresConfFragment
from deploys.guard import postgres_conf_path
from deploys.managed import files_present, literal, rendered
from deploys.tasks.config import password_path
from deploys.tasks.standby import tls_files

ROLES_SQL = "/var/lib/gept/postgres-roles.sql"
DATABASE_SQL = "/var/lib/gept/postgres-database.sql"


@deploy("Install and configure PostgreSQL")
def configure_postgres(password_file: object, restart_allowed: bool = False,
                       role: str = "primary") -> None:
    """Install PostgreSQL, tune it, create the roles and the database.

    Args:
        password_file: the operation writing the roles' password files (passwords are set
            when it changed; a password never travels in a command line).
        restart_allowed: the guard approved the ``restart-postgres`` zone for this run.
        role: the host's replication role (``deploys.tasks.standby.decide``): only the
            primary creates roles and sets passwords (a standby replays them); a host
            to be cloned (``seed``, ``reseed``) is not started here (the clone starts it).
    """
    from gept.db import roles

    data = host.data
    version = data.postgres_version
    # A host without our fragment yet has no clients: restarting it changes nothing anyone
    # relies on (restart-only settings such as archive_mode take effect on the first run).
    fresh = host.get_fact(PostgresConfFragment, path=postgres_conf_path(data)) is None
    restart_ok = restart_allowed or fresh
    apt.packages(name=f"Install PostgreSQL {version}",
                 packages=[f"postgresql-{version}", f"postgresql-client-{version}"],
                 no_recommends=True)
    # Before the settings that name them (ssl = on reads these on the next reload).
    tls = files_present(name="Install PostgreSQL's TLS certificate and replication passfile",
                        files=tls_files(data))
    tuned = files_present(name="Tune PostgreSQL (conf.d fragment)", files=[
        rendered("postgres/gept.conf.j2", postgres_conf_path(data), user="postgres",
                 settings=data.postgres_settings)])
    conf_dir = f"/etc/postgresql/{version}/main"
    services = [data.db_engine_user, data.db_collectors_user, data.db_user,
                data.db_registry_user]
    auth = files_present(name="Configure client authentication (pg_hba, pg_ident)", files=[
        rendered("postgres/pg_hba.conf.j2", f"{conf_dir}/pg_hba.conf", mode="0640",
                 user="postgres", db=data.db_name, owner=data.db_owner,
                 probe=data.db_probe_user, services=",".join(services),
                 replication="gept_replication"),
        rendered("postgres/pg_ident.conf.j2", f"{conf_dir}/pg_ident.conf", mode="0640",
                 user="postgres", owner=data.db_owner, probe=data.db_probe_user,
                 probe_os_users=list(data.db_probe_os_users))])
    unit = f"postgresql@{version}-main.service"
    if role in ("seed", "reseed"):
        # Replaced by a clone of the primary (deploys/tasks/standby.py starts it): a fresh
        # or failed data directory, or a fenced (masked) one, is not started here.
        return
    systemd.service(name="Start PostgreSQL", service=unit, running=True, enabled=True)
    # Reloadable settings (and pg_hba/pg_ident) apply on reload; restart-only settings need
    # the coordinated restart.
    systemd.service(name="Reload PostgreSQL for changed settings", service=unit,
                    reloaded=True,
                    _if=lambda: auth.did_change() or tls.did_change()
                    or (tuned.did_change() and not restart_ok))
    systemd.service(name="Restart PostgreSQL (coordinated: restart-postgres)", service=unit,
                    restarted=True, _if=lambda: tuned.did_change() and restart_ok)
    if role != "primary":
        return  # roles, database and passwords arrive by replication

    # Every psql below runs from / (_chdir): the postgres user cannot read root's home.
    psql = "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1"
    # The role statements carry no secret: a root-only file, re-run only when the roles on
    # the server differ from the design (one fact, so a converged host changes nothing).
    scripts = files_present(name="Write the role definitions", files=[
        literal(";\n".join(roles.create_roles_sql(data.db_owner)) + ";\n", ROLES_SQL, "0600"),
        literal(";\n".join(roles.database_sql()) + ";\n", DATABASE_SQL, "0600")])
    drift = host.get_fact(PgRoles, owner=data.db_owner) != roles.expected_roles(data.db_owner)
    created = server.shell(
        name="Create the per-job PostgreSQL roles (owner, engine, collectors, inference, "
             "registry, probe)",
        commands=[f"{psql} -d postgres -f - < {ROLES_SQL}"], _chdir="/",
        _if=None if drift else scripts.did_change)
    postgres.database(name=f"Create the {data.db_name} database", database=data.db_name,
                      owner=data.db_owner, encoding="UTF8", _sudo=True, _sudo_user="postgres",
                      _use_sudo_login=False, _chdir="/")
    server.shell(name=f"Close large objects to every role in {data.db_name}",
                 commands=[f"{psql} -d {shlex.quote(data.db_name)} -f - < {DATABASE_SQL}"],
                 _chdir="/", _if=created.did_change)
    # Each password is read on the host from its 0600 file into a psql variable.
    commands = []
    for role in [*services, "gept_replication"]:
        path = shlex.quote(password_path(data, role))
        commands.append(
            f"printf '%s\\n' \"ALTER ROLE \\\"{role}\\\" PASSWORD :'pw';\" | {psql} "
            f"-v pw=\"$(head -n1 {path})\"")
    server.shell(
        name="Set the roles' passwords from their files in " + data.config_dir,
        commands=[" && ".join(commands)], _chdir="/",
        _if=lambda: created.did_change() or tls.did_change()
        or password_file.did_change())  # type: ignore[attr-defined]
