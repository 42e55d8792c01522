"""Hydra's training environment: CatBoost in the release venv (the ``ml`` extra), the GPU
settings from inventory data, the models directory shared with inference."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files

from deploys.tasks import TEMPLATES


@deploy("Prepare the training environment")
def prepare_training() -> None:
    """training.env (task type, visible GPUs) next to gept.env; the models directory."""
    data = host.data
    # psql through the tunnel: operators' queries and the model-registry facts.
    apt.packages(name="Install the PostgreSQL client",
                 packages=[f"postgresql-client-{data.postgres_version}"], no_recommends=True)
    files.directory(name="Create the models directory", path=data.models_dir,
                    user=data.gept_user, group=data.gept_group, mode="0755")
    files.template(name="Write training.env (CatBoost task type and GPUs)",
                   src=f"{TEMPLATES}/app/training.env.j2",
                   dest=f"{data.config_dir}/training.env", user=data.gept_user,
                   group=data.gept_group, mode="0600")
