"""Ampere: PostgreSQL, the recommendation engine, collectors, monitoring, fallback inference."""

app_root = "/opt/recommendation-engine"

# The engine listens on loopback only; Caddy (deploys/tasks/proxy.py) serves it over TLS.
engine_bind = "127.0.0.1"
engine_workers = 2
engine_tls_port = 443
# Where the certificate comes from and which web app the engine calls back differ between
# production (group_data/production.py: ACME for a public name) and the lab (lab.py).
engine_max_body_bytes = 65536
# The engine's predictions snapshot read from a standby (libpq prefer-standby over every
# database host; the primary when no standby answers). Its writes stay on the primary. During
# a switchover one database host always answers, so the snapshot's refresh never fails and
# the engine keeps serving from memory (it answers 503 while its reads fail).
engine_reads_from_standby = True
# Ampere's firewall: SSH and the engine's TLS port (the engine's own port is loopback only).
firewall_open_ports = [22, 443]

collectors_dir = "/opt/gept/collectors"
collectors_image = "gept/collectors"
monitoring_dir = "/opt/gept/monitoring"
monitoring_image = "gept/monitoring"
# Grafana only exists on public registries; production pulls it, the lab validates statically.
grafana_image = "grafana/grafana-oss:11.3.0"
grafana_enabled = True
# The lab's hosts cannot pull public images; it sets this to False (see README).
monitoring_pull_public_images = True

inference_role = "fallback"
