"""The deploys against the lab: converge, idempotency, services, and the engine answering
from a model trained in the lab. Uses the session's ``converged_lab`` (both hosts converged
twice by ``deploys/site.py``, data backfilled, a model trained on Hydra, inference run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures_converge import CONVERGE

from gept import convergence
from gept.lab import workload

pytestmark = pytest.mark.timeout(2400)


def test_both_roles_converge(converged_lab: Any) -> None:
    first = CONVERGE["first"]
    assert first.returncode == 0
    # Every operation of both roles ran without error on both hosts.
    assert first.totals["error"] == 0, first.totals


def test_second_run_reports_zero_changes(converged_lab: Any) -> None:
    # All three hosts: the first run changed the standby (cloned it), the second nothing.
    assert any("ampere-standby" in hosts for hosts in CONVERGE["first"].changed.values())
    second = CONVERGE["second"]
    assert second.returncode == 0
    assert second.changed == {}, f"operations changed on a re-run: {second.changed}"
    assert second.totals["success"] == 0
    assert second.totals["no_change"] == second.totals["hosts"]


def test_postgres_engine_collectors_crons_and_tunnel_run(converged_lab: Any) -> None:
    lab = converged_lab
    assert lab.sh("ampere", "systemctl is-active postgresql@15-main").strip() == "active"
    assert lab.sh("ampere", "systemctl is-active recommendation-engine").strip() == "active"
    # Beyond loopback for the standby, behind TLS and the firewall's peer rule.
    listen = lab.sh("ampere", "runuser -u postgres -- psql -tAc 'SHOW listen_addresses'")
    assert listen.strip() == "*"
    assert lab.sh("ampere-standby", "runuser -u postgres -- psql -tAc "
                                    "'SELECT pg_is_in_recovery()'").strip() == "t"
    running = lab.sh("ampere", "docker ps --filter label=com.docker.compose.project=collectors "
                     "--format '{{.Label \"com.docker.compose.service\"}}'").split()
    assert sorted(running) == sorted(
        ["collector-5m", "collector-latest", "collector-1h", "collector-items",
         "collector-news", "collector-players", "status-page"])
    assert "--role fallback" in lab.sh("ampere", "cat /etc/cron.d/gept-inference")
    # Backups are taken on the repository's host (hydra), never on a database host.
    assert "--type=diff backup" in lab.sh("hydra", "cat /etc/cron.d/gept-backup")
    assert lab.run("ampere", "test -e /etc/cron.d/gept-backup").returncode != 0
    assert "--role primary" in lab.sh("hydra", "cat /etc/cron.d/gept-inference")
    assert lab.sh("hydra", "systemctl is-active gept-db-tunnel").strip() == "active"
    assert lab.sh("hydra", "systemctl is-active gept-db-tunnel-ampere-standby").strip() \
        == "active"
    # The tunnel carries Hydra's database traffic to Ampere's PostgreSQL.
    count = lab.sh("hydra", "PGPASSWORD=$(cat /etc/gept/db_password) psql -h 127.0.0.1 "
                   "-p 15432 -U gept_inference -d osrs_data -tAc 'SELECT count(*) FROM items'")
    assert int(count.strip()) > 0


def test_engine_unit_is_hardened_and_secrets_are_private(converged_lab: Any) -> None:
    lab = converged_lab
    props = lab.sh("ampere", "systemctl show recommendation-engine -p User -p NoNewPrivileges "
                   "-p ProtectSystem -p PrivateTmp")
    assert "User=gept" in props
    assert "NoNewPrivileges=yes" in props
    assert "ProtectSystem=strict" in props
    assert "PrivateTmp=yes" in props
    modes = lab.sh("ampere", "stat -c '%a %n' /etc/gept /etc/gept/engine.env "
                   "/etc/gept/db_password /opt/gept/collectors/.env")
    assert modes.split("\n")[0].startswith("700 ")
    assert all(line.startswith("600 ") for line in modes.strip().split("\n")[1:]), modes


def test_firewall_opens_only_ssh_and_the_engines_tls_port(converged_lab: Any) -> None:
    rules = converged_lab.sh("ampere", "nft list table inet gept_firewall")
    assert "policy drop" in rules
    assert "tcp dport { 22, 443 } accept" in rules
    # PostgreSQL only from the standby's address.
    standby = converged_lab.sh("ampere", "getent ahostsv4 ampere-standby | cut -d' ' -f1 "
                                         "| sort -u").split()
    assert f"ip saddr {standby[0]} tcp dport 5432 accept" in rules


def test_engine_answers_from_a_model_trained_in_the_lab(converged_lab: Any) -> None:
    trained = CONVERGE["train"]
    recs = workload.recommendations()  # the clients' bare array (web-contract W1)
    assert recs, f"no recommendations: {json.dumps(recs)[:500]}"
    # The model behind them was trained on Hydra in the lab: this session's run is in the
    # registry, and the ACTIVE model's artifact lives in Hydra's models directory.
    sql = "runuser -u postgres -- psql -d osrs_data -tAc "
    run_id = str(trained["run_id"])
    runs = converged_lab.sh("ampere", sql + f"\"SELECT count(*) FROM model_registry "
                                            f"WHERE run_id = '{run_id}'\"")
    assert int(runs.strip()) >= 1, trained
    active = converged_lab.sh("ampere", sql + "\"SELECT model_path FROM model_registry "
                                              "WHERE status = 'ACTIVE' LIMIT 1\"").strip()
    assert active, "no ACTIVE model"
    path = active if active.startswith("/") else f"/var/lib/gept/models/{active}"
    assert converged_lab.run("hydra", f"test -e {path}").returncode == 0, path


def test_drift_reports_nothing_after_converge(converged_lab: Any) -> None:
    proc = subprocess.run([sys.executable, "-m", "gept.cli", "drift", "--inventory",
                           str(convergence.LAB_INVENTORY), "--json"], capture_output=True,
                          text=True, timeout=600, cwd=convergence.REPO, check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    assert report["changed"] is False
    assert set(report["hosts"]) == {"ampere", "hydra", "ampere-standby"}


def test_monitoring_runs_and_grafana_is_validated_statically(converged_lab: Any) -> None:
    lab = converged_lab
    running = lab.sh("ampere", "docker ps --filter label=com.docker.compose.project=monitoring "
                     "--format '{{.Label \"com.docker.compose.service\"}}'").split()
    assert sorted(running) == ["alertmanager", "node-exporter", "postgres-exporter",
                               "prometheus"]
    # Grafana's image is only on public registries: the lab renders its service under a
    # profile and validates the whole project with compose instead of starting it.
    config = lab.sh("ampere", "cd /opt/gept/monitoring && "
                    "docker-compose --profile public-images config")
    assert "grafana/grafana-oss" in config
    assert "GF_SERVER_HTTP_PORT: '3001'" in config or 'GF_SERVER_HTTP_PORT: "3001"' in config


def test_production_inventory_plans_against_lab_hosts_only(converged_lab: Any,
                                                            tmp_path: Path) -> None:
    """inventory/production.py, pointed at the lab through its environment variables
    (never a production address), plans both roles in --dry mode."""
    from gept.lab.topology import LabTopology

    topo = LabTopology.from_env()
    env = {
        "GEPT_AMPERE_HOST": "ampere", "GEPT_HYDRA_HOST": "hydra",
        "GEPT_SSH_CONFIG": str(topo.ssh_config_path),
        "GEPT_KNOWN_HOSTS": str(topo.known_hosts_path),
        "GEPT_DB_PASSWORD": "plan-only-not-a-real-password",
        "GEPT_DB_PASSWORD_GEPT_ENGINE": "plan-only-not-a-real-password",
        "GEPT_DB_PASSWORD_GEPT_COLLECTORS": "plan-only-not-a-real-password",
        "GEPT_DB_PASSWORD_GEPT_REGISTRY": "plan-only-not-a-real-password",
        "GEPT_ENGINE_API_KEY": "plan-only-not-a-real-api-key",
        "GEPT_WEBHOOK_SECRET": "plan-only-not-a-real-webhook-secret",
        "GEPT_ENGINE_DOMAIN": "engine.gept.example",
        "GEPT_DB_PASSWORD_GEPT_REPLICATION": "plan-only-not-a-real-password",
        "GEPT_BACKUP_CIPHER_PASS": "plan-only-not-a-real-passphrase",
        "GEPT_BACKUP_S3_KEY": "plan-only-not-a-real-key",
        "GEPT_BACKUP_S3_KEY_SECRET": "plan-only-not-a-real-secret",
    }
    # Production keeps its internal CA in the operator's secrets directory (never
    # generated by a deploy): a throwaway one made as the operator would, for this plan.
    secrets = tmp_path / "secrets"
    subprocess.run([sys.executable, "-m", "deploys.tls", str(secrets)], cwd=convergence.REPO,
                   check=True, capture_output=True, timeout=60)
    pyinfra = Path(sys.executable).with_name("pyinfra")
    proc = subprocess.run(
        [str(pyinfra), "--dry", "--json", "inventory/production.py", "deploys/site.py",
         "--data", f"secrets_dir={secrets}"],
        cwd=convergence.REPO, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads(proc.stdout)["plan"]
    names = {op["name"] for op in plan}
    assert "Run the recommendation engine | Start the recommendation engine" in names
    assert ("Run the database tunnel to Ampere | Start the database tunnel "
            "(gept-db-tunnel.service)") in names
    # Production differs from the lab in data only: Grafana is started there, GPUs are used.
    assert any(op["name"] == "Run monitoring | Write the monitoring configuration and project"
               and "ampere" in op["hosts_with_change"] for op in plan)


def test_backup_metrics_written_from_the_repository(converged_lab: Any) -> None:
    """The metrics cron reads the repository on hydra and the archiver on Ampere."""
    lab = converged_lab
    lab.sh("ampere", "/opt/recommendation-engine/current/venv/bin/python -I -m "
                     "gept.db.backups metrics", timeout=120)
    metric = lab.sh("ampere", "cat /var/lib/gept/textfile/gept_backup.prom")
    assert "gept_backup_repository_ok 1" in metric
    assert "gept_backup_last_full_timestamp_seconds " in metric
    assert "gept_wal_archived_total " in metric
    assert "gept_postgres_in_recovery 0" in metric

