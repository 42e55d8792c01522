"""Data every host shares: the single source of versions, ports, paths and schedules.

Deploys, runbooks and checks read these names; change a value here, never in a deploy.
Collector intervals and metrics ports are not restated: they come from ``gept.core.config``
(one place to guard, because changing an interval is the ``collector-intervals`` danger zone).
"""

from gept.core.config import COLLECTOR_INTERVALS, COLLECTOR_METRICS_PORTS

# Operations run as root through sudo (production logs in as a sudo user; lab as root).
_sudo = True

# -- who may approve, and the agent -----------------------------------------------------
# Approvals are OpenSSH signatures by these people's keys (gept coordinate approve). Add a
# person: their public key line here, then converge (the hosts' /etc/gept/allowed_signers).
# Revoke: remove the line and converge. Keys only, never private material.
inventory_id = "production"   # approvals name hosts as <inventory_id>/<host>
approvers: dict[str, str] = {}
agent_authorized_keys: list[str] = []   # the agent's SSH public key(s) for gept-agent

# -- people and places ------------------------------------------------------------------
gept_user = "gept"
gept_group = "gept"
config_dir = "/etc/gept"
state_dir = "/var/lib/gept/state"
models_dir = "/var/lib/gept/models"
log_dir = "/var/log/gept"
wheelhouse_dir = "/opt/gept/wheelhouse"
app_root = "/opt/gept/app"          # releases/<version>/venv + current (Ampere overrides)
keep_releases = 5

# -- versions ---------------------------------------------------------------------------
postgres_version = 15
python = "python3"
app_extras = "ml"                   # CatBoost for training and both inference roles

# -- network ----------------------------------------------------------------------------
ssh_port_internal = 22
postgres_port = 5432
engine_port = 8000
status_port = 8080
collector_metrics_ports = dict(COLLECTOR_METRICS_PORTS)
prometheus_port = 9090
alertmanager_port = 9093
grafana_port = 3001
node_exporter_port = 9110
postgres_exporter_port = 9187
tunnel_local_port = 15432
# Ports the firewall opens to the world: SSH only; Ampere adds the engine's TLS port
# (group_data/ampere.py). Ports for named peers come from the deploys (firewall_peers).
firewall_open_ports = [22]

# -- database hosts (Ampere, the primary, and the standbys of group db_standby) ---------
# The host whose PostgreSQL is the primary; the others in db_standby stream from it. After
# `promote-standby` (or a `switchover`) the operator sets the new primary's name here: a
# converge refuses to make a promoted primary a standby again, or a standby a primary.
db_primary = "ampere"
# PostgreSQL tuning, rendered into conf.d on every database host. Settings in
# `postgres_restart_settings` need a restart to take effect (the `restart-postgres` danger
# zone on a running cluster); the rest only a reload. WAL is archived continuously to the
# backup repository (pgBackRest, deploys/tasks/backups.py): `archive_timeout` bounds the data
# a lost disk can take with it (a WAL segment is archived at least every 30 s under writes).
# Streaming replication (deploys/tasks/standby.py): every database host listens beyond
# loopback, but its firewall admits PostgreSQL's port only from the other database hosts and
# pg_hba only over TLS (the internal CA's host certificates, deploys/tls.py). The slot keeps
# WAL for a standby that is away, up to `max_slot_wal_keep_size` (the disk is small).
postgres_settings = {
    "listen_addresses": "'*'",
    "max_connections": "100",
    "shared_buffers": "128MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "128MB",
    "effective_cache_size": "512MB",
    "random_page_cost": "1.1",
    "log_min_duration_statement": "1000",
    "checkpoint_completion_target": "0.9",
    "wal_level": "replica",
    "archive_mode": "on",
    "archive_command": "'pgbackrest --stanza=gept archive-push %p'",
    "archive_timeout": "30",
    "ssl": "on",
    "ssl_cert_file": "'/etc/postgresql/15/main/tls/server.crt'",
    "ssl_key_file": "'/etc/postgresql/15/main/tls/server.key'",
    "ssl_ca_file": "'/etc/postgresql/15/main/tls/ca.crt'",
    "max_slot_wal_keep_size": "'2GB'",
    "hot_standby_feedback": "on",
}
postgres_restart_settings = ["listen_addresses", "max_connections", "shared_buffers",
                             "port", "max_worker_processes", "wal_level", "archive_mode",
                             "max_wal_senders"]

# -- database ---------------------------------------------------------------------------
db_name = "osrs_data"
# One role per job (gept.db.roles explains each). The owner has no password: only root on
# Ampere reaches it (peer, for migrations and grants). `db_user` is each host's default
# service role, the one in gept.env and /etc/gept/db_password: inference (both hosts run an
# inference cron), also used by the checks and the PostgreSQL exporter to read.
db_owner = "osrs_user"
db_user = "gept_inference"
db_engine_user = "gept_engine"
db_collectors_user = "gept_collectors"
db_registry_user = "gept_registry"
db_probe_user = "gept_probe"
# OS accounts that may connect as the read-only probe role without a password (pg_ident).
db_probe_os_users = ["gept-agent", "root", "postgres"]

# -- schedules --------------------------------------------------------------------------
collector_intervals = dict(COLLECTOR_INTERVALS)
inference_minute = "*/5"
stale_after_seconds = 600
# Backups: pgBackRest (deploys/tasks/backups.py). WAL is archived continuously; a full backup
# every Sunday and a differential one every other day at backup_hour:backup_minute (UTC);
# `backup_retention_full` full backups are kept (with the WAL that makes each restorable).
# The repository is never on a database host: `backup_repo_host` names the inventory host
# that keeps it (pgBackRest's TLS server; the lab: hydra), or, when empty, the S3 bucket of
# `backup_s3` (production: Oracle Object Storage's S3-compatible API, group_data/production).
backup_stanza = "gept"
backup_repo_host = ""
backup_repo_path = "/var/lib/pgbackrest"
backup_s3: dict[str, str] = {}
backup_hour = "2"
backup_minute = "0"
backup_retention_full = 2
backup_tls_port = 8432            # pgBackRest's TLS server on the repository and database hosts
# The weekly restore drill (runbook restore-drill, also a timer on the drill host): restore
# the latest point into a scratch instance on a standby host and compare it with the source.
restore_drill_weekday = "Sat"
restore_drill_time = "03:30"
restore_drill_port = 5499
restore_drill_dir = "/var/lib/gept/restore-drill"

# -- upstream -----------------------------------------------------------------------------
wiki_base_url = "https://prices.runescape.wiki/api/v1/osrs"
wiki_user_agent = "gept-collector/0.1 (ops@gept.example)"

# -- time sync and updates --------------------------------------------------------------
ntp_servers = ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]
unattended_upgrades_origins = ["origin=Debian,codename=${distro_codename},label=Debian-Security",
                               "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"]

# -- the database tunnel (Hydra -> Ampere) ------------------------------------------------
tunnel_user = "gept-tunnel"         # the account on Ampere the tunnel key may use
