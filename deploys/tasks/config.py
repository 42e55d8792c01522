"""The application's configuration on a host: /etc/gept/gept.env and the secret files
(0600, owned by the service user), shared by the engine, crons and collectors."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.secrets import secret
from deploys.tasks import TEMPLATES


def database_url(data: object) -> str:
    """Where this host's processes reach PostgreSQL (Hydra: through the tunnel)."""
    d = data
    port = d.tunnel_local_port if "hydra" in host.groups else d.postgres_port  # type: ignore[attr-defined]
    return f"postgresql://{d.db_user}@127.0.0.1:{port}/{d.db_name}"  # type: ignore[attr-defined]


@deploy("Write the gept configuration")
def write_config() -> list[object]:
    """Secrets and env files; returns the operations whose change needs a service restart."""
    data = host.data
    owner = {"user": data.gept_user, "group": data.gept_group, "mode": "0600"}
    changed = [
        files.put(name="Write the database password", src=StringIO(secret("db_password", data)
                                                                  + "\n"),
                  dest=f"{data.config_dir}/db_password", **owner),
        files.template(name="Write gept.env", src=f"{TEMPLATES}/app/gept.env.j2",
                       dest=f"{data.config_dir}/gept.env", database_url=database_url(data),
                       **owner),
    ]
    if "ampere" in host.groups:
        changed.append(files.put(
            name="Write the engine API key",
            src=StringIO(secret("engine_api_key", data) + "\n"),
            dest=f"{data.config_dir}/engine_api_key", **owner))
        changed.append(files.template(
            name="Write engine.env", src=f"{TEMPLATES}/engine/engine.env.j2",
            dest=f"{data.config_dir}/engine.env", **owner))
    return changed
