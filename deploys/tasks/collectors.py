"""The collectors on Ampere: a Docker Compose project (one service per collector and the
status page) on the host network, restarted unless stopped, configured by a 0600 .env.

``intervals.json`` records the intervals the project runs with; the guard compares it with
the desired ones (``collector-intervals`` danger zone) before anything changes.
"""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import docker

from deploys.facts.gept import ComposeServicesRunning
from deploys.guard import intervals_path
from deploys.managed import files_present, literal, rendered
from deploys.secrets import role_secret, secret
from deploys.tasks.config import database_url
from deploys.tasks.docker import ship_image

PROJECT = "collectors"


def service_names(intervals: dict[str, int]) -> list[str]:
    """Compose service names: ``collector-<name>`` for each collector, and ``status-page``."""
    return [f"collector-{name}" for name in intervals] + ["status-page"]


@deploy("Run the collectors")
def run_collectors() -> None:
    """Ship the image, render the project, bring it up only when something changed."""
    data = host.data
    tag, loaded = ship_image("collectors", data.get("collectors_base_image"), True)
    intervals = dict(data.collector_intervals)
    # The collectors' own role: writes the market tables only (gept.db.roles).
    role = data.db_collectors_user
    project = files_present(name="Write the collectors project (.env, compose, intervals)",
                            files=[
        rendered("collectors/env.j2", f"{data.collectors_dir}/.env", mode="0600",
                 database_url=database_url(data, role, secret(role_secret(role, data), data))),
        rendered("collectors/docker-compose.yml.j2", f"{data.collectors_dir}/docker-compose.yml",
                 image=tag, intervals=intervals, metrics_ports=data.collector_metrics_ports),
        literal(json.dumps(intervals, indent=2, sort_keys=True) + "\n", intervals_path(data)),
    ])
    running = host.get_fact(ComposeServicesRunning, project=PROJECT)
    all_up = all(running.get(s) for s in service_names(intervals))
    changed = [op for op in (loaded, project) if op is not None]
    # A stopped service is a certain change (visible to `gept drift`), not a conditional one.
    docker.compose(
        name="Bring the collectors up", project_directory=data.collectors_dir,
        project_name=PROJECT, compose_command="docker-compose", remove_orphans=True,
        _if=None if not all_up else lambda: any(op.did_change() for op in changed))
