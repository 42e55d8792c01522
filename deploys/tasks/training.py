"""Hydra's training environment: CatBoost in the release venv (the ``ml`` extra), the GPU
settings from inventory data, the models directory shared with inference."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

from deploys.managed import files_present, rendered
from deploys.tasks.config import database_url


@deploy("Prepare the training environment")
def prepare_training() -> None:
    """training.env (task type, visible GPUs) next to gept.env; the models directory."""
    data = host.data
    # psql through the tunnel: operators' queries and the model-registry facts.
    apt.packages(name="Install the PostgreSQL client",
                 packages=[f"postgresql-client-{data.postgres_version}"], no_recommends=True)
    files_present(name="Write training.env (CatBoost task type and GPUs)", files=[
        rendered("app/training.env.j2", f"{data.config_dir}/training.env",
                 user=data.gept_user, group=data.gept_group, mode="0600",
                 registry_url=database_url(data, data.db_registry_user))])
