"""Ampere: PostgreSQL, the engine, the collectors, predictions, monitoring, secrets.

Each test is one check an operator (or a runbook's verify step) can name; items that come
in sets (collectors, monitoring services, secret files) are parameters, not loops.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from checklib import DEFAULTS, Target, parse_metrics

COLLECTORS = sorted(DEFAULTS["collector_intervals"])
MONITORING = ["prometheus", "alertmanager", "grafana"]
SECRETS = ["db_password", "gept.env", "engine_api_key", "engine.env",
           "db_password_gept_engine", "db_password_gept_collectors", "db_password_gept_registry",
           "collectors.env"]
READY_PATHS = {"prometheus": "/-/ready", "alertmanager": "/-/ready", "grafana": "/api/health"}


def _postgres_unit(ampere: Target) -> str:
    return f"postgresql@{ampere.get('postgres_version')}-main"


def test_postgresql_running(ampere: Target) -> None:
    """PostgreSQL is running."""
    unit = _postgres_unit(ampere)
    assert ampere.host.service(unit).is_running, f"{unit} is not running"


def test_postgresql_enabled(ampere: Target) -> None:
    """PostgreSQL starts at boot."""
    unit = _postgres_unit(ampere)
    enabled = ampere.host.service(unit).is_enabled or ampere.host.service("postgresql").is_enabled
    assert enabled, f"neither {unit} nor postgresql.service is enabled"


def test_postgresql_listens_but_not_to_everyone(ampere: Target) -> None:
    """PostgreSQL listens, and the firewall does not open its port to everyone (the
    standbys reach it over TLS from their addresses only: checks/test_standby.py)."""
    port = int(ampere.get("postgres_port"))
    out = ampere.run(f"ss -Hltn 'sport = :{port}'").stdout
    addresses = sorted({line.split()[3].rsplit(":", 1)[0] for line in out.splitlines()
                        if line.strip()})
    assert addresses, f"nothing listens on port {port}"
    assert port not in [int(p) for p in ampere.get("firewall_open_ports")], (
        f"the firewall opens PostgreSQL's port {port} to everyone")


def test_database_reachable_as_app_user(ampere: Target) -> None:
    """osrs_data is reachable as osrs_user."""
    result = ampere.sql("SELECT current_user || '@' || current_database()")
    expected = f"{ampere.get('db_user')}@{ampere.get('db_name')}"
    assert result.rc == 0, f"psql as {ampere.get('db_user')} failed: {result.stderr.strip()}"
    assert result.stdout.strip() == expected


def test_schema_at_latest_migration(ampere: Target) -> None:
    """The schema is at the latest migration the release ships."""
    gept = f"{ampere.get('app_root')}/current/venv/bin/gept"
    env = f"{ampere.get('config_dir')}/gept.env"
    # As the service user, like the engine and crons: it reads its own 0600 password file.
    script = f"set -a; . {env}; set +a; exec {gept} db status --json"
    result = ampere.run(f"runuser -u {ampere.get('gept_user')} -- sh -c {shlex.quote(script)}")
    try:
        status = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail(f"`gept db status` gave no JSON (exit {result.rc}): "
                    f"{(result.stderr or result.stdout).strip()[:300]}", pytrace=False)
    assert not status.get("pending"), (
        f"schema at {status.get('current')}, latest {status.get('latest')}: "
        f"pending {status.get('pending')}")


def test_engine_unit_active(ampere: Target) -> None:
    """The recommendation engine unit is active."""
    svc = ampere.host.service("recommendation-engine")
    assert svc.is_running, "recommendation-engine.service is not running"


def test_engine_unit_enabled(ampere: Target) -> None:
    """The recommendation engine starts at boot."""
    assert ampere.host.service("recommendation-engine").is_enabled, \
        "recommendation-engine.service is not enabled"


def test_current_release_symlink_valid(ampere: Target) -> None:
    """The engine's `current` symlink points at an installed release."""
    root = ampere.get("app_root")
    link = ampere.file(f"{root}/current")
    assert link.is_symlink, f"{root}/current is not a symlink"
    resolved = ampere.run(f"readlink -f {root}/current").stdout.strip()
    assert resolved.startswith(f"{root}/releases/"), f"{root}/current -> {resolved}"
    python = ampere.file(f"{resolved}/venv/bin/gept")
    assert python.is_file, f"{resolved} has no venv/bin/gept (a broken release)"


def test_engine_health_ok(ampere: Target) -> None:
    """The engine's health endpoint answers and the database is reachable."""
    answer = ampere.http_get(f"http://127.0.0.1:{ampere.get('engine_port')}/api/v1/health")
    assert answer.status == 200, f"/api/v1/health: {answer.describe()}"
    status = answer.json().get("status")
    # "degraded" means stale predictions, which test_predictions_fresh reports by itself.
    assert status in ("ok", "degraded"), f"/api/v1/health status is {status!r}"


def _compose_containers(ampere: Target) -> dict[str, tuple[str, str]]:
    """Compose service -> (state, container name) for the collectors project."""
    directory = ampere.get("collectors_dir")
    fmt = '{{.Label "com.docker.compose.service"}}\t{{.State}}\t{{.Names}}'
    out = ""
    for label in (f"com.docker.compose.project.working_dir={directory}",
                  f"com.docker.compose.project={directory.rstrip('/').rsplit('/', 1)[-1]}"):
        out = ampere.run(f"docker ps -a --filter label={label} --format '{fmt}'").stdout
        if out.strip():
            break
    found = {}
    for line in out.splitlines():
        service, state, name = [*line.split("\t"), "", ""][:3]
        found[service] = (state, name)
    return found


def _service_for(collector: str, services: dict[str, tuple[str, str]]) -> str | None:
    for service in services:
        if service == collector or service.endswith((f"-{collector}", f"_{collector}")):
            return service
    return None


@pytest.mark.parametrize("collector", COLLECTORS)
def test_collector_container_running(ampere: Target, collector: str) -> None:
    """The collector's container is running."""
    services = _compose_containers(ampere)
    service = _service_for(collector, services)
    assert service is not None, (
        f"no compose service for collector {collector} in {ampere.get('collectors_dir')} "
        f"(services: {sorted(services) or 'none'})")
    state, name = services[service]
    assert state == "running", f"container {name} (service {service}) is {state}"


@pytest.mark.parametrize("collector", COLLECTORS)
def test_collector_runs_with_configured_interval(ampere: Target, collector: str) -> None:
    """The collector exports the interval the inventory configures."""
    port = ampere.get("collector_metrics_ports")[collector]
    expected = float(ampere.get("collector_intervals")[collector])
    answer = ampere.http_get(f"http://127.0.0.1:{port}/metrics")
    assert answer.status == 200, f"collector {collector} metrics on :{port}: {answer.describe()}"
    metrics = parse_metrics(answer.body)
    key = ("gept_collector_interval_seconds", frozenset({("collector", collector)}))
    assert key in metrics, f":{port}/metrics has no gept_collector_interval_seconds for {collector}"
    assert metrics[key] == expected, (
        f"collector {collector} runs every {metrics[key]:g} s; the inventory says {expected:g} s")


def test_predictions_fresh(ampere: Target) -> None:
    """The newest predictions batch is fresher than the stale threshold (10 minutes)."""
    limit = int(ampere.get("stale_after_seconds"))
    result = ampere.sql("SELECT COALESCE(round(extract(epoch FROM now() - max(\"time\")))::text, "
                        "'none') FROM prediction_batches")
    assert result.rc == 0, f"cannot read prediction_batches: {result.stderr.strip()}"
    age = result.stdout.strip()
    assert age != "none", "no predictions batch has ever been written"
    assert float(age) <= limit, f"newest predictions batch is {float(age):.0f} s old (> {limit} s)"


def test_fallback_inference_cron_present(ampere: Target) -> None:
    """Ampere's fallback inference cron is installed (every 5 minutes, role fallback)."""
    cron = ampere.file("/etc/cron.d/gept-inference")
    assert cron.is_file, "/etc/cron.d/gept-inference is missing"
    text = ampere.run("cat /etc/cron.d/gept-inference").stdout
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")
             and "gept infer" in ln]
    assert lines, "/etc/cron.d/gept-inference has no `gept infer` line"
    assert lines[0].split()[0] == "*/5", f"fallback cron schedule is {lines[0].split()[0]!r}"
    assert "--role fallback" in lines[0], "Ampere's cron does not run --role fallback"
    assert cron.mode is not None, "cannot read the cron file's mode"
    assert not cron.mode & 0o022, f"cron ignores group/world-writable files (mode {cron.mode:04o})"


@pytest.mark.parametrize("service", MONITORING)
def test_monitoring_service_up(ampere: Target, service: str) -> None:
    """The monitoring service answers its readiness endpoint."""
    if service == "grafana" and not ampere.get("grafana_enabled"):
        pytest.skip("grafana_enabled is false for this host")
    port = ampere.get(f"{service}_port")
    answer = ampere.http_get(f"http://127.0.0.1:{port}{READY_PATHS[service]}")
    assert answer.status == 200, f"{service} on :{port}: {answer.describe()}"


@pytest.mark.parametrize("job", ["engine", "collectors", "collector-status", "node", "postgres",
                                 "node-standby"])
def test_prometheus_scrapes(ampere: Target, job: str) -> None:
    """Prometheus scrapes the job and its targets are up."""
    port = ampere.get("prometheus_port")
    answer = ampere.http_get(f"http://127.0.0.1:{port}/api/v1/targets?state=active")
    assert answer.status == 200, f"prometheus targets API: {answer.describe()}"
    targets = [t for t in answer.json()["data"]["activeTargets"]
               if t["labels"].get("job") == job]
    if job == "node-standby" and not targets:
        pytest.skip("the inventory has no database standby (nothing to scrape over TLS)")
    assert targets, f"Prometheus has no {job} targets"
    down = [f"{t['scrapeUrl']} ({t.get('lastError') or t['health']})" for t in targets
            if t["health"] != "up"]
    assert not down, f"{job} targets not up: {', '.join(down)}"


@pytest.mark.parametrize("secret", SECRETS)
def test_secret_file_mode_0600(ampere: Target, secret: str) -> None:
    """The secret file exists with mode 0600."""
    path = f"{ampere.get('config_dir')}/{secret}"
    f = ampere.file(path)
    assert f.is_file, f"{path} is missing"
    assert f.mode == 0o600, f"{path} has mode {f.mode:04o}, not 0600"


def test_collectors_env_mode_0600(ampere: Target) -> None:
    """The collectors' compose .env file has mode 0600."""
    path = f"{ampere.get('collectors_dir')}/.env"
    f = ampere.file(path)
    assert f.is_file, f"{path} is missing"
    assert f.mode == 0o600, f"{path} has mode {f.mode:04o}, not 0600"


# ------------------------------------------------------- least privilege (gept.db.roles)

def _as_postgres(ampere: Target, database: str, query: str) -> Any:
    return ampere.run(f"cd / && runuser -u postgres -- psql -X -q -A -t -F ' ' "
                      f"-d {shlex.quote(database)} -c {shlex.quote(query)}")


def _probe(ampere: Target, query: str) -> Any:
    """A query as the runbook runner renders SQL steps (root is in the probe's peer map).

    ``query`` may hold several ``-c`` commands separated by `` -c `` (each its own
    transaction, as psql runs them).
    """
    commands = " ".join(f"-c {shlex.quote(q)}" for q in query.split(" -c "))
    return ampere.run(f"cd / && psql -X -q -A -t -v ON_ERROR_STOP=1 -U gept_probe "
                      f"-d {shlex.quote(str(ampere.get('db_name')))} {commands}")


def test_database_roles_as_designed(ampere: Target) -> None:
    """One role per job exists, none superuser or member of a server-access role; the
    owner and the probe have no password."""
    from gept.db import roles

    result = _as_postgres(ampere, "postgres", roles.role_query())
    assert result.rc == 0, result.stderr
    got = [" ".join(line.split()) for line in result.stdout.splitlines() if line.strip()]
    assert got == roles.expected_roles()


def test_table_grants_follow_table_names(ampere: Target) -> None:
    """Every table's grants are what its name says (gept db grants converged them)."""
    from gept.db import roles

    result = _as_postgres(ampere, str(ampere.get("db_name")), roles.GRANTS_QUERY)
    assert result.rc == 0, result.stderr
    drift = roles.grants_drift([" ".join(line.split()) for line in result.stdout.splitlines()])
    assert drift == [], drift[:10]


def test_probe_role_reads_without_a_password(ampere: Target) -> None:
    """Runbook SQL probes connect as gept_probe by peer authentication and can read."""
    result = _probe(ampere, "SELECT current_user, count(*) > 0 FROM schema_migrations")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "gept_probe|t"


@pytest.mark.parametrize("attempt", [
    "BEGIN READ WRITE; UPDATE model_registry SET status = status; COMMIT",
    "SET default_transaction_read_only = off -c DELETE FROM prediction_batches",
    "BEGIN READ WRITE; ALTER TABLE predictions ADD COLUMN probe_was_here int; COMMIT",
    "COPY (SELECT 1) TO PROGRAM 'id'",
    "BEGIN READ WRITE; CREATE TEMP TABLE t (i int); COMMIT",
])
def test_probe_role_can_write_nothing(ampere: Target, attempt: str) -> None:
    """Nothing a probe's text says can write, reach the shell, or change the schema."""
    result = _probe(ampere, attempt)
    assert result.rc != 0, f"the probe role ran {attempt!r}"
    assert "permission denied" in result.stderr or "must be" in result.stderr, result.stderr


@pytest.mark.parametrize(("role", "attempt"), [
    ("gept_engine", "ALTER TABLE predictions ADD COLUMN engine_was_here int"),
    ("gept_engine", "UPDATE model_registry SET status = status"),
    ("gept_engine", "DROP TABLE engine_trades"),
    ("gept_collectors", "DELETE FROM prediction_batches"),
    ("gept_collectors", "UPDATE model_registry SET status = status"),
    ("gept_inference", "ALTER TABLE predictions ADD COLUMN inference_was_here int"),
    ("gept_inference", "UPDATE model_registry SET status = status"),
])
def test_service_roles_cannot_touch_what_is_not_theirs(ampere: Target, role: str,
                                                       attempt: str) -> None:
    """The engine and collectors cannot alter predictions or write the registry."""
    password = f"{ampere.get('config_dir')}/" + (
        "db_password" if role == ampere.get("db_user") else f"db_password_{role}")
    result = ampere.run(
        f"cd / && PGPASSWORD=\"$(head -n1 {shlex.quote(password)})\" psql -X -q -A -t "
        f"-v ON_ERROR_STOP=1 -h 127.0.0.1 -p {int(ampere.get('postgres_port'))} "
        f"-U {role} -d {shlex.quote(str(ampere.get('db_name')))} -c {shlex.quote(attempt)}")
    assert result.rc != 0, f"{role} ran {attempt!r}"
    assert "permission denied" in result.stderr or "must be owner" in result.stderr, (
        result.stderr)


def test_owner_role_is_not_reachable_over_the_network(ampere: Target) -> None:
    """The schema owner has no password and pg_hba admits it only from root's socket."""
    result = ampere.run(
        f"cd / && PGPASSWORD=guess psql -X -w -h 127.0.0.1 -p {int(ampere.get('postgres_port'))} "
        f"-U osrs_user -d {shlex.quote(str(ampere.get('db_name')))} -c 'SELECT 1'")
    assert result.rc != 0
    assert "no pg_hba.conf entry" in result.stderr or "authentication failed" in result.stderr
