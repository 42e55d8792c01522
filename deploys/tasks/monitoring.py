"""Monitoring on Ampere: Prometheus, Alertmanager, node and PostgreSQL exporters as Compose
services (one image built from Debian packages), Grafana from its upstream image.

The Prometheus/Alertmanager/Grafana configuration templates are the monitoring work's
(``templates/monitoring/``, see its README for the context variables); this task renders
them and owns the compose project. Grafana exists only on public registries: where
``grafana_enabled`` is False (the lab) its service is rendered under a compose profile, so
``docker-compose config`` validates it but ``up`` does not start it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import docker, files

from deploys.facts.gept import ComposeServicesRunning
from deploys.secrets import secret
from deploys.tasks import TEMPLATES
from deploys.tasks.backups import TEXTFILE_DIR
from deploys.tasks.docker import ship_image

PROJECT = "monitoring"
SERVICES = ["prometheus", "alertmanager", "node-exporter", "postgres-exporter"]
MON = f"{TEMPLATES}/monitoring"


def template_context(data: object) -> dict[str, object]:
    """The context the monitoring templates expect (templates/monitoring/README.md)."""
    d = data
    return {
        "ports": {"engine": d.engine_port, "status": d.status_port,  # type: ignore[attr-defined]
                  "prometheus": d.prometheus_port, "alertmanager": d.alertmanager_port,  # type: ignore[attr-defined]
                  "node_exporter": d.node_exporter_port,  # type: ignore[attr-defined]
                  "postgres_exporter": d.postgres_exporter_port},  # type: ignore[attr-defined]
        "collector_ports": dict(d.collector_metrics_ports),  # type: ignore[attr-defined]
        "collectors": dict(d.collector_intervals),  # type: ignore[attr-defined]
        "scrape_host": "127.0.0.1",
        "environment": d.get("env") or "production",  # type: ignore[attr-defined]
        "rules_dir": "/etc/prometheus/rules",
        "predictions_stale_seconds": d.stale_after_seconds,  # type: ignore[attr-defined]
        "grafana_dashboards_dir": "/var/lib/grafana/dashboards",
    }


@deploy("Run monitoring")
def run_monitoring() -> None:
    """Ship the monitoring image, render configs and the project, bring it up on change."""
    data = host.data
    tag, loaded = ship_image("monitoring", data.get("collectors_base_image"), False)
    root = data.monitoring_dir
    ctx = template_context(data)
    # files.template/put create missing parent directories (root, 0755) themselves.
    changed = [op for op in (loaded,) if op is not None]
    changed.append(files.template(name="Render the Prometheus configuration",
                                  src=f"{MON}/prometheus.yml.j2",
                                  dest=f"{root}/prometheus/prometheus.yml", mode="0644", **ctx))
    changed.append(files.template(name="Render the alert rules", src=f"{MON}/alerts.yml.j2",
                                  dest=f"{root}/rules/gept-alerts.yml", mode="0644", **ctx))
    changed.append(files.template(name="Render the Alertmanager configuration",
                                  src=f"{MON}/alertmanager.yml.j2",
                                  dest=f"{root}/alertmanager/alertmanager.yml", mode="0644",
                                  **ctx))
    for kind in ("datasources/prometheus.yml", "dashboards/gept.yml"):
        changed.append(files.template(
            name=f"Render Grafana provisioning {kind}",
            src=f"{MON}/grafana/provisioning/{kind}.j2",
            dest=f"{root}/grafana/provisioning/{kind}", mode="0644", **ctx))
    for board in sorted(Path(f"{MON}/grafana/dashboards").glob("*.json")):
        changed.append(files.put(name=f"Copy the {board.stem} dashboard", src=str(board),
                                 dest=f"{root}/grafana/dashboards/{board.name}", mode="0644"))
    password = quote(secret("db_password", data), safe="")
    changed.append(files.template(
        name="Write the monitoring .env", src=f"{TEMPLATES}/monitoring-compose/env.j2",
        dest=f"{root}/.env", mode="0600",
        dsn=(f"postgresql://{data.db_user}:{password}@127.0.0.1:{data.postgres_port}/"
             f"{data.db_name}?sslmode=disable")))
    changed.append(files.template(
        name="Write the monitoring compose file",
        src=f"{TEMPLATES}/monitoring-compose/docker-compose.yml.j2",
        dest=f"{root}/docker-compose.yml", mode="0644", image=tag,
        textfile_dir=TEXTFILE_DIR, grafana_enabled=bool(data.get("grafana_enabled", True))))
    running = host.get_fact(ComposeServicesRunning, project=PROJECT)
    wanted = SERVICES + (["grafana"] if data.get("grafana_enabled", True) else [])
    all_up = all(running.get(s) for s in wanted)
    # A stopped service is a certain change (visible to `gept drift`), not a conditional one.
    docker.compose(
        name="Bring monitoring up", project_directory=root, project_name=PROJECT,
        compose_command="docker-compose", remove_orphans=True,
        _if=None if not all_up else lambda: any(op.did_change() for op in changed))
