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
from typing import Any
from urllib.parse import quote

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import docker

from deploys.facts.gept import ComposeServicesRunning
from deploys.managed import copied, files_present, literal, rendered
from deploys.secrets import secret
from deploys.tasks import TEMPLATES
from deploys.tasks.backups import TEXTFILE_DIR
from deploys.tasks.docker import ship_image
from deploys.tls import host_certificate_for

PROJECT = "monitoring"
SERVICES = ["prometheus", "alertmanager", "node-exporter", "postgres-exporter"]
MON = f"{TEMPLATES}/monitoring"


def template_context(data: object) -> dict[str, Any]:
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
        # Prometheus runs in a container that sees the config folder at /etc/gept-monitoring.
        "tls_ca_file": "/etc/gept-monitoring/tls/internal-ca.crt",
        "tls_node_targets": [
            f"{h.data.get('lab_internal_address') or h.name}:{d.node_exporter_port}"  # type: ignore[attr-defined]
            for h in inventory.get_group("db_standby", [])],
    }


@deploy("Run monitoring")
def run_monitoring() -> None:
    """Ship the monitoring image, render configs and the project, bring it up on change."""
    data = host.data
    tag, loaded = ship_image("monitoring", data.get("collectors_base_image"), False)
    root = data.monitoring_dir
    ctx = template_context(data)
    password = quote(secret("db_password", data), safe="")
    grafana = bool(data.get("grafana_enabled", True))
    wanted = [
        rendered(f"{MON}/prometheus.yml.j2", f"{root}/prometheus/prometheus.yml", **ctx),
        *([literal(host_certificate_for(data, host.name, [host.name]).ca,
                   f"{root}/prometheus/tls/internal-ca.crt")] if ctx["tls_node_targets"] else []),
        rendered(f"{MON}/alerts.yml.j2", f"{root}/rules/gept-alerts.yml", **ctx),
        rendered(f"{MON}/alertmanager.yml.j2", f"{root}/alertmanager/alertmanager.yml", **ctx),
        *(rendered(f"{MON}/grafana/provisioning/{kind}.j2",
                   f"{root}/grafana/provisioning/{kind}", **ctx)
          for kind in ("datasources/prometheus.yml", "dashboards/gept.yml")),
        *(copied(board, f"{root}/grafana/dashboards/{board.name}")
          for board in sorted(Path(f"{MON}/grafana/dashboards").glob("*.json"))),
        rendered("monitoring-compose/env.j2", f"{root}/.env", mode="0600",
                 dsn=(f"postgresql://{data.db_user}:{password}@127.0.0.1:"
                      f"{data.postgres_port}/{data.db_name}?sslmode=disable")),
        rendered("monitoring-compose/docker-compose.yml.j2", f"{root}/docker-compose.yml",
                 image=tag, textfile_dir=TEXTFILE_DIR, grafana_enabled=grafana),
    ]
    changed = [op for op in (loaded,) if op is not None]
    changed.append(files_present(name="Write the monitoring configuration and project",
                                 files=wanted))
    running = host.get_fact(ComposeServicesRunning, project=PROJECT)
    services = SERVICES + (["grafana"] if data.get("grafana_enabled", True) else [])
    all_up = all(running.get(s) for s in services)
    # A stopped service is a certain change (visible to `gept drift`), not a conditional one.
    docker.compose(
        name="Bring monitoring up", project_directory=root, project_name=PROJECT,
        compose_command="docker-compose", remove_orphans=True,
        _if=None if not all_up else lambda: any(op.did_change() for op in changed))
