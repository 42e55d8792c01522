"""Ampere: PostgreSQL, the recommendation engine, collectors, monitoring, fallback inference."""

app_root = "/opt/recommendation-engine"

# PostgreSQL tuning, rendered into conf.d. Settings in `postgres_restart_settings` need a
# restart to take effect (the `restart-postgres` danger zone); the rest only a reload.
postgres_settings = {
    "listen_addresses": "'localhost'",
    "max_connections": "100",
    "shared_buffers": "128MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "128MB",
    "effective_cache_size": "512MB",
    "random_page_cost": "1.1",
    "log_min_duration_statement": "1000",
    "checkpoint_completion_target": "0.9",
}
postgres_restart_settings = ["listen_addresses", "max_connections", "shared_buffers",
                             "port", "max_worker_processes", "wal_level"]

# The engine listens on loopback only; Caddy (deploys/tasks/proxy.py) serves it over TLS.
engine_bind = "127.0.0.1"
engine_workers = 2
engine_tls_port = 443
# Where the certificate comes from and which web app the engine calls back differ between
# production (group_data/production.py: ACME for a public name) and the lab (lab.py).
engine_max_body_bytes = 65536
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
