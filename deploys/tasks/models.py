"""Model pins (Hydra's inventory ``model_pins = {scope: model_id}``): make the pinned model the
ACTIVE one of its scope with ``gept models promote``. Writing the registry is the
``model-registry`` danger zone; the guard has verified a person's approval for exactly this
promotion before this runs, and ``gept models promote --approval`` verifies it again on the
host against its own allowed signers (root spends it in the host's ledger).
Runs on Hydra: promotion verifies the model's artifact, and the models live there."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from deploys.guard import active_models


@deploy("Apply model pins")
def apply_model_pins(approval: str | None) -> None:
    """Promote pinned models that are not ACTIVE (only when the zone was approved)."""
    data = host.data
    pins = dict(data.get("model_pins") or {})
    if not pins or not approval:
        return
    active = active_models(host)
    venv = f"{data.app_root}/current/venv/bin"
    for scope, model_id in sorted(pins.items()):
        if active.get(scope) == int(model_id):
            continue
        server.shell(
            name=f"Promote model {model_id} in scope {scope}",
            # training.env: the registry's own role (the only one that may change ACTIVE).
            commands=[f"set -a && . {data.config_dir}/gept.env && "
                      f". {data.config_dir}/training.env && set +a && "
                      f"{venv}/gept models promote {int(model_id)} --json "
                      f"--approval {shlex.quote(approval)}"],
            _sudo=True, _use_sudo_login=False, _chdir="/")
