"""Scheduled inference: Hydra's primary cron and Ampere's fallback cron (``*/5``; the
fallback only predicts when Hydra's predictions are stale). Log rotation for gept logs."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.guard import INFERENCE_CRON
from deploys.tasks import TEMPLATES


@deploy("Schedule inference")
def schedule_inference() -> None:
    """The ``gept infer --role <role>`` cron, present unless ``inference_enabled`` is False."""
    data = host.data
    enabled = bool(data.get("inference_enabled", True))
    if enabled:
        files.template(name=f"Schedule {data.inference_role} inference every 5 minutes",
                       src=f"{TEMPLATES}/inference/gept-inference.cron.j2",
                       dest=INFERENCE_CRON, mode="0644", role=data.inference_role)
    else:
        files.file(name=f"Remove the {data.inference_role} inference cron",
                   path=INFERENCE_CRON, present=False)
    files.template(name="Rotate gept logs", src=f"{TEMPLATES}/inference/logrotate.j2",
                   dest="/etc/logrotate.d/gept", mode="0644")
