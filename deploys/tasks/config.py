"""The application's configuration on a host: /etc/gept/gept.env and the secret files
(0600), shared by the engine, crons and collectors.

Each job connects as its own PostgreSQL role (``gept.db.roles``) with its own password
file, owned by the account that runs the job:

=====================================  ===========  ======================================
file (in ``config_dir``)               owner        used by
=====================================  ===========  ======================================
``db_password`` (``db_user``:          gept         inference crons (both hosts), checks,
gept_inference)                                     the PostgreSQL exporter (in its .env)
``db_password_gept_engine``            gept         the engine (Ampere, ``engine.env``)
``db_password_gept_collectors``        gept         host-side ``gept collect`` on Ampere
                                                    (``collectors.env``); the containers
                                                    get it in their root-only ``.env``
``db_password_gept_registry``          gept (Hydra) ``gept train`` / ``gept models promote``
                                       root (Amp.)  (``training.env``); the host gate
                                                    (``GEPT_REGISTRY_DATABASE_*``)
=====================================  ===========  ======================================

The schema owner has no password anywhere: migrations and grants run as root on Ampere,
mapped to the owner by peer authentication (``pg_ident.conf``).
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy

from deploys.managed import Managed, files_present, literal, rendered
from deploys.secrets import role_secret, secret


def database_url(data: Any, role: str | None = None, password: str | None = None,
                 target: str = "read-write") -> str:
    """Where this host's processes reach PostgreSQL as ``role``: every database host, in
    one libpq string that connects to whichever accepts writes (Hydra: its tunnels).

    After a promotion nothing is re-pointed: the fenced old primary refuses connections
    and the standbys are read-only, so libpq lands on the new primary
    (``deploys/tasks/standby.py``). TLS is verified against the internal CA everywhere.

    Example:
        >>> database_url(host.data, "gept_engine")                  # doctest: +SKIP
        'postgresql://gept_engine@127.0.0.1:5432,ampere-standby:5432/osrs_data?target_...'
    """
    from urllib.parse import quote

    from deploys.tasks.standby import CLIENT_CA, endpoints

    hosts = ",".join(f"{name}:{port}" for name, port in endpoints(data))
    user = role or data.db_user
    auth = f"{user}:{quote(password, safe='')}" if password else user
    return (f"postgresql://{auth}@{hosts}/{data.db_name}?target_session_attrs={target}"
            f"&sslmode=verify-full&sslrootcert={CLIENT_CA}")


def password_path(data: Any, role: str) -> str:
    """The 0600 file holding ``role``'s password on the host."""
    return f"{data.config_dir}/{role_secret(role, data)}"


def password_files(data: Any) -> list[Managed]:
    """The password files this host gets, each owned by the account that uses it."""
    gept = {"user": data.gept_user, "group": data.gept_group, "mode": "0600"}
    root = {"user": "root", "group": "root", "mode": "0600"}
    roles: list[tuple[str, dict[str, str]]] = [(data.db_user, gept)]
    if "ampere" in host.groups:
        roles += [(data.db_engine_user, gept), (data.db_collectors_user, gept),
                  (data.db_registry_user, root)]  # Ampere: only the root gate writes it
    if "hydra" in host.groups:
        roles.append((data.db_registry_user, gept))  # training and promotion run as gept
    seen: dict[str, Managed] = {}
    for role, owner in roles:
        seen[role] = literal(secret(role_secret(role, data), data) + "\n",
                             password_path(data, role), **owner)
    return list(seen.values())


@deploy("Write the gept configuration")
def write_config() -> list[object]:
    """Secrets and env files; returns the operations whose change needs a service restart.

    The first operation returned writes the database passwords (PostgreSQL sets a role's
    password when it changed).
    """
    data = host.data
    owner = {"user": data.gept_user, "group": data.gept_group, "mode": "0600"}
    password = files_present(name="Write the database passwords", files=password_files(data))
    registry = {"registry_url": database_url(data, data.db_registry_user),
                "registry_password_file": password_path(data, data.db_registry_user)}
    wanted = [rendered("app/gept.env.j2", f"{data.config_dir}/gept.env",
                       database_url=database_url(data), **registry, **owner)]
    if "ampere" in host.groups:
        wanted += [
            literal(secret("engine_api_key", data) + "\n", f"{data.config_dir}/engine_api_key",
                    **owner),
            rendered("engine/engine.env.j2", f"{data.config_dir}/engine.env",
                     engine_database_url=database_url(data, data.db_engine_user),
                     # `engine_reads_from_standby`: the predictions snapshot from a standby.
                     engine_read_url=(database_url(data, data.db_engine_user,
                                                   target="prefer-standby")
                                      if data.get("engine_reads_from_standby") else ""),
                     engine_password_file=password_path(data, data.db_engine_user), **owner),
            # Host-side collector commands (backfill, gaps --repair) as the collectors' role:
            # `set -a; . gept.env; . collectors.env; set +a`.
            literal("# Managed by GePT deploys: host-side `gept collect` as gept_collectors.\n"
                    f"GEPT_DATABASE_URL='{database_url(data, data.db_collectors_user)}'\n"
                    "GEPT_DATABASE_PASSWORD_FILE="
                    f"'{password_path(data, data.db_collectors_user)}'\n",
                    f"{data.config_dir}/collectors.env", **owner)]
    return [password, files_present(name="Write the gept environment", files=wanted)]
