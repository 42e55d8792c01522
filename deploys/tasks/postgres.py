"""PostgreSQL 15 from apt: the ``osrs_data`` database, the ``osrs_user`` role, tuning in a
conf.d fragment (reload for reloadable settings; a restart only inside the
``restart-postgres`` danger zone)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, postgres, server, systemd

from deploys.guard import postgres_conf_path
from deploys.managed import files_present, rendered


@deploy("Install and configure PostgreSQL")
def configure_postgres(password_file: object, restart_allowed: bool = False) -> None:
    """Install PostgreSQL, tune it, create the role and database.

    Args:
        password_file: the operation writing /etc/gept/db_password (set the password when
            it changed; the password never travels in a command line).
        restart_allowed: the guard approved the ``restart-postgres`` zone for this run.
    """
    data = host.data
    version = data.postgres_version
    apt.packages(name=f"Install PostgreSQL {version}",
                 packages=[f"postgresql-{version}", f"postgresql-client-{version}"],
                 no_recommends=True)
    tuned = files_present(name="Tune PostgreSQL (conf.d fragment)", files=[
        rendered("postgres/gept.conf.j2", postgres_conf_path(data), user="postgres",
                 settings=data.postgres_settings)])
    unit = f"postgresql@{version}-main.service"
    systemd.service(name="Start PostgreSQL", service=unit, running=True, enabled=True)
    # Reloadable settings apply on reload; restart-only ones need the coordinated restart.
    systemd.service(name="Reload PostgreSQL for changed settings", service=unit,
                    reloaded=True, _if=lambda: tuned.did_change() and not restart_allowed)
    systemd.service(name="Restart PostgreSQL (coordinated: restart-postgres)", service=unit,
                    restarted=True, _if=lambda: tuned.did_change() and restart_allowed)

    psql = {"_sudo": True, "_sudo_user": "postgres", "_use_sudo_login": False, "_chdir": "/"}
    role = postgres.role(name=f"Create the {data.db_user} role", role=data.db_user,
                         login=True, **psql)
    # Read on the host from the 0600 file and passed through stdin: never in argv or logs.
    server.shell(
        name=f"Set the {data.db_user} password from {data.config_dir}/db_password",
        commands=[f"printf '%s\\n' \"ALTER ROLE \\\"{data.db_user}\\\" PASSWORD :'pw';\" | "
                  f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "
                  f"-v pw=\"$(cat {data.config_dir}/db_password)\""],
        _chdir="/",
        _if=lambda: role.did_change() or password_file.did_change())  # type: ignore[attr-defined]
    postgres.database(name=f"Create the {data.db_name} database", database=data.db_name,
                      owner=data.db_user, encoding="UTF8", **psql)
