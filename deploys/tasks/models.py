"""Model pins (Hydra's inventory ``model_pins = {scope: model_id}``): make the pinned model the
ACTIVE one of its scope with ``gept models promote``. Writing the registry is the
``model-registry`` danger zone; the guard has required a token before this runs, and the
host approves that exact promotion in its own coordination store for the one command.
Runs on Hydra: promotion verifies the model's artifact, and the models live there."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from deploys.guard import active_models


@deploy("Apply model pins")
def apply_model_pins(allowed: bool) -> None:
    """Promote pinned models that are not ACTIVE (only when the zone was approved)."""
    data = host.data
    pins = dict(data.get("model_pins") or {})
    if not pins or not allowed:
        return
    active = active_models(host)
    venv = f"{data.app_root}/current/venv/bin"
    for scope, model_id in sorted(pins.items()):
        if active.get(scope) == int(model_id):
            continue
        py = ("from gept import guards; print(guards.approve('model-registry', "
              f"guards.plan_hash({{'action': 'models-promote', 'model_id': {int(model_id)}}}), "
              "'deploy coordinated by a controller token', 300, 'gept-deploy'))")
        server.shell(
            name=f"Promote model {model_id} in scope {scope}",
            commands=[f"set -a && . {data.config_dir}/gept.env && set +a && "
                      f"export GEPT_COORDINATION_TOKEN=$({venv}/python -c {shlex.quote(py)}) && "
                      f"{venv}/gept models promote {int(model_id)} --json"],
            _sudo=True, _sudo_user=data.gept_user, _use_sudo_login=False, _chdir="/")
