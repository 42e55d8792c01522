"""The application's configuration on a host: /etc/gept/gept.env and the secret files
(0600, owned by the service user), shared by the engine, crons and collectors."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from deploys.managed import files_present, literal, rendered
from deploys.secrets import secret


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
    password = files_present(name="Write the database password", files=[
        literal(secret("db_password", data) + "\n", f"{data.config_dir}/db_password", **owner)])
    wanted = [rendered("app/gept.env.j2", f"{data.config_dir}/gept.env",
                       database_url=database_url(data), **owner)]
    if "ampere" in host.groups:
        wanted += [
            literal(secret("engine_api_key", data) + "\n", f"{data.config_dir}/engine_api_key",
                    **owner),
            rendered("engine/engine.env.j2", f"{data.config_dir}/engine.env", **owner)]
    return [password, files_present(name="Write the gept environment", files=wanted)]
