"""Scheduled inference: Hydra's primary cron and Ampere's fallback cron (``*/5``; the
fallback only predicts when Hydra's predictions are stale). Log rotation for gept logs."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.guard import INFERENCE_CRON
from deploys.managed import files_present, rendered


@deploy("Schedule inference")
def schedule_inference() -> None:
    """The ``gept infer --role <role>`` cron, present unless ``inference_enabled`` is False."""
    data = host.data
    enabled = bool(data.get("inference_enabled", True))
    wanted = [rendered("inference/logrotate.j2", "/etc/logrotate.d/gept")]
    if enabled:
        wanted.append(rendered("inference/gept-inference.cron.j2", INFERENCE_CRON,
                               role=data.inference_role))
    else:
        files.file(name=f"Remove the {data.inference_role} inference cron",
                   path=INFERENCE_CRON, present=False)
    files_present(name=f"Schedule {data.inference_role} inference every 5 minutes; "
                       "rotate gept logs", files=wanted)
