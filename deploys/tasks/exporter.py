"""node_exporter on the database standbys, for Ampere's Prometheus (job ``node-standby``).

Ampere's own exporters run in its monitoring Compose project on loopback. A standby's
metrics (the weekly restore drill's result, its backup and replication textfiles, its
disks) must cross hosts, so its exporter (Debian's ``prometheus-node-exporter``) serves
TLS only, with the host's certificate from the internal CA (``deploys/tls.py``), and the
firewall admits its port only from the monitoring host (``deploys/tasks/standby.py``,
``firewall_peers``). Metrics are not secret; no client certificate is asked for, so the
monitoring container needs nothing but the CA certificate to verify it.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, systemd

from deploys.managed import Dir, directories_present, files_present, literal, rendered
from deploys.tasks.backups import TEXTFILE_DIR
from deploys.tls import host_certificate_for

UNIT = "prometheus-node-exporter.service"


@deploy("Export the standby's metrics over TLS")
def export_metrics() -> None:
    """Install node_exporter, its TLS configuration and arguments; keep it running."""
    data = host.data
    apt.packages(name="Install node_exporter", packages=["prometheus-node-exporter"],
                 no_recommends=True)
    directories_present(name="Create node_exporter's certificate directory", dirs=[
        Dir("/etc/prometheus/tls", "0750", "root", "prometheus"), Dir(TEXTFILE_DIR, "0755")])
    cert = host_certificate_for(data, host.name, [str(data.get("lab_internal_address")
                                                      or host.name)])
    changed = files_present(name="Configure node_exporter (TLS, textfile collector)", files=[
        literal(cert.cert, "/etc/prometheus/tls/host.crt", "0644"),
        literal(cert.key, "/etc/prometheus/tls/host.key", "0640", "root", "prometheus"),
        rendered("exporter/web.yml.j2", "/etc/prometheus/node-exporter-web.yml", "0644"),
        rendered("exporter/defaults.j2", "/etc/default/prometheus-node-exporter", "0644",
                 textfile_dir=TEXTFILE_DIR)])
    systemd.service(name="Run node_exporter", service=UNIT, running=True, enabled=True)
    systemd.service(name="Restart node_exporter for its new configuration", service=UNIT,
                    restarted=True, _if=changed.did_change)
