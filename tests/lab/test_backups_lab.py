"""Backups on the lab: WAL reaches the repository on hydra, the restore drill passes on the
standby and reports its figures, and restore-postgres brings back what was archived — only
with a person's approval.

The agent runs the runbooks (``gept-agent``, its own key and ``gept``); the person signs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from agentside import agent_runbook, agent_ssh, person_approves
from breakage import engine_healthy, psql, wait_for

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

pytestmark = pytest.mark.timeout(1800)


def _backup_info(lab: LabHandle, host: str = "ampere") -> dict[str, Any]:
    out = lab.sh(host, "/usr/local/sbin/gept-op backup-info", timeout=120)
    info: dict[str, Any] = json.loads(out)
    return info


def _archived_through(lab: LabHandle) -> None:
    """Force the current WAL segment out and wait until the archiver has pushed it."""
    before = int(psql(lab, "SELECT archived_count FROM pg_stat_archiver").strip())
    psql(lab, "SELECT pg_switch_wal()")
    wait_for("the WAL segment to reach the repository",
             lambda: int(psql(lab, "SELECT archived_count FROM pg_stat_archiver").strip())
             > before, timeout=120, interval=1)


def _step_output(result: dict[str, Any], host: str, step: str) -> str:
    for s in result["hosts"][host]["steps"]:
        if s["step"] == step:
            return str(s.get("stdout") or s.get("output") or "")
    raise AssertionError(f"no step {step} on {host}: {result['hosts'][host]['steps']}")


def test_the_repository_is_on_hydra_and_holds_a_full_backup(converged: LabHandle) -> None:
    info = _backup_info(converged)
    assert info["repository"]["status"] == 0
    assert any(b["type"] == "full" for b in info["repository"]["backups"])
    assert info["archiver"]["in_recovery"] == 0
    assert info["archiver"]["archived"] > 0
    # The backups are on hydra, not on any database host.
    assert converged.sh("hydra", "ls /var/lib/pgbackrest/backup/gept").strip()
    for host in ("ampere", "ampere-standby"):
        assert converged.run(host, "test -e /var/lib/pgbackrest/backup").returncode != 0
    # Encrypted at rest: the repository's manifest is not readable text.
    manifest = converged.sh("hydra", "find /var/lib/pgbackrest/backup/gept -name "
                                     "'backup.manifest' | head -1").strip()
    head = converged.sh("hydra", f"head -c 64 {manifest} | od -c | head -2")
    assert "[backrest]" not in head


def _repo_status_with(lab: LabHandle, cert: bytes, key: bytes) -> dict[str, Any]:
    """``pgbackrest info`` from Ampere presenting this certificate to the repository."""
    lab.sh("ampere", "install -d -m 0700 -o postgres /tmp/intruder")
    for name, data in (("c.crt", cert), ("c.key", key)):
        # A throwaway key made for this test: on the command line is fine.
        b64 = base64.b64encode(data).decode()
        lab.sh("ampere", f"echo {b64} | base64 -d > /tmp/intruder/{name} && chown postgres "
                         f"/tmp/intruder/{name} && chmod 0600 /tmp/intruder/{name}")
    out = lab.sh("ampere", "cd / && runuser -u postgres -- pgbackrest --stanza=gept "
                           "--repo1-host-cert-file=/tmp/intruder/c.crt "
                           "--repo1-host-key-file=/tmp/intruder/c.key --output=json info")
    lab.sh("ampere", "rm -rf /tmp/intruder")
    status: dict[str, Any] = json.loads(out)[0]["status"]
    return status


def test_the_repository_refuses_a_certificate_it_did_not_authorize(
        converged: LabHandle) -> None:
    """Other routes to the repository: a self-made certificate for Ampere's name, and a
    certificate from the right CA for a name the repository does not list."""
    from deploys.tls import INTERNAL_CA_CERT, INTERNAL_CA_KEY, _ca, _issue

    folder = Path(converged.inventory.host("ampere").data["secrets_dir"])
    ca, ca_key = _ca(folder, INTERNAL_CA_CERT, INTERNAL_CA_KEY, "unused", create=False)
    cert, key = _issue(ca, ca_key, "intruder", ["intruder"], client=True)
    status = _repo_status_with(converged, cert, key)
    assert status["code"] != 0, status
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    fake_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ampere")])
    now = dt.datetime.now(dt.UTC)
    fake = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(fake_key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(fake_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    status = _repo_status_with(converged, fake.public_bytes(pem), fake_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert status["code"] != 0, status
    # Ampere's own certificate still works (the refusals were about the certificates).
    assert _backup_info(converged)["repository"]["status"] == 0


def test_restore_drill_passes_and_reports_its_figures(converged: LabHandle) -> None:
    marker = f"drill-{int(time.time())}"
    psql(converged, "INSERT INTO prediction_batches (\"time\", run_id, role, rows_written, "
                    f"items) VALUES (now() - interval '1 hour', '{marker}', 'fallback', 0, 0)")
    _archived_through(converged)
    live_before = converged.sh("ampere", "runuser -u postgres -- psql -XAtq -d osrs_data -c "
                                         "'SELECT count(*) FROM price_data_5min'").strip()
    code, result = agent_runbook("run", "restore-drill", timeout=1800)
    assert code == 0, json.dumps(result)[-3000:]
    assert all(v["ok"] for v in result["verification"]), result["verification"]
    report = json.loads(_step_output(result, "ampere-standby", "drill"))
    assert report["ok"] is True, report
    assert set(report["tables"]) >= {"price_data_5min", "prediction_batches", "predictions",
                                     "model_registry", "model_artifacts"}
    assert all(t["ok"] for t in report["tables"].values()), report["tables"]
    assert report["tables"]["price_data_5min"]["rows"] > 0
    assert report["tables"]["price_data_5min"]["rows"] <= int(live_before)
    assert 0 <= report["recovery_point_age_seconds"] < 600
    assert report["restore_seconds"] > 0
    # The live clusters were not touched: the scratch instance is gone, nothing listens on
    # the drill's port, and the primary still takes writes.
    assert converged.run("ampere-standby", "ss -Hltn 'sport = :5499' | grep -q .").returncode != 0
    assert converged.run("ampere-standby", "test -e /var/lib/gept/restore-drill/data"
                         ).returncode != 0
    metric = converged.sh("ampere-standby", "cat /var/lib/gept/textfile/gept_restore_drill.prom")
    assert "gept_restore_drill_ok 1" in metric
    assert "gept_restore_drill_recovery_point_age_seconds" in metric


def test_restore_drill_reports_a_difference(converged: LabHandle) -> None:
    """A drill that cannot match the source fails loudly (metric 0, runbook exit nonzero)."""
    # The source of the comparison is the standby: make it disagree by comparing against a
    # cutoff the repository cannot reach (the drill of a repository with WAL archiving
    # stopped): stop archiving, write, and the restored copy lacks the rows the standby has.
    psql(converged, "ALTER SYSTEM SET archive_command = '/bin/false'")
    psql(converged, "SELECT pg_reload_conf()")
    try:
        psql(converged, "INSERT INTO prediction_batches (\"time\", run_id, role, rows_written, "
                        "items) VALUES (now() - interval '2 hours', 'unarchived', 'fallback', "
                        "0, 0)")
        psql(converged, "SELECT pg_switch_wal()")
        time.sleep(3)  # streamed to the standby at once; never archived
        code, result = agent_runbook("run", "restore-drill", timeout=1800)
        assert code != 0
        report = json.loads(_step_output(result, "ampere-standby", "drill"))
        assert report["ok"] is False
        assert report["tables"]["prediction_batches"]["ok"] is False
        metric = converged.sh("ampere-standby",
                              "cat /var/lib/gept/textfile/gept_restore_drill.prom")
        assert "gept_restore_drill_ok 0" in metric
    finally:
        psql(converged, "ALTER SYSTEM RESET archive_command")
        psql(converged, "SELECT pg_reload_conf()")
    _archived_through(converged)


@pytest.mark.rewinds_the_lab
def test_restore_postgres_needs_an_approval_and_brings_back_what_was_archived(
        converged: LabHandle) -> None:
    code, refused = agent_runbook("run", "restore-postgres")
    assert code == 3
    assert refused["zone"] == "restore-postgres"
    assert converged.sh("ampere", "systemctl is-active recommendation-engine").strip() \
        == "active"  # refused before anything was stopped
    # Raw SSH to the gate without an approval: refused too.
    raw = agent_ssh("ampere", "sudo -n /usr/local/sbin/gept-gate restore-postgres "
                              f"--plan-hash {'0' * 64} --approval x --target latest")
    assert raw.returncode != 0

    marker = f"restore-{int(time.time())}"
    psql(converged, "INSERT INTO prediction_batches (\"time\", run_id, role, rows_written, "
                    f"items) VALUES (now() - interval '3 hours', '{marker}', 'fallback', 0, 0)")
    _archived_through(converged)
    code, plan = agent_runbook("plan", "restore-postgres")
    assert code == 0, plan
    approval = person_approves(plan)
    code, result = agent_runbook("run", "restore-postgres", "--approval", approval,
                                 timeout=1800)
    assert code == 0, json.dumps(result)[-3000:]
    assert all(v["ok"] for v in result["verification"]), result["verification"]
    assert psql(converged, "SELECT count(*) FROM prediction_batches WHERE run_id = "
                           f"'{marker}'").strip() == "1"
    assert psql(converged, "SELECT pg_is_in_recovery()").strip() == "f"
    wait_for("the engine to be healthy", lambda: engine_healthy(converged), timeout=120)
    # Archiving continues on the new timeline.
    _archived_through(converged)
    _reseed_standby(converged)


def _reseed_standby(lab: LabHandle) -> None:
    """After a restore the standby is ahead of the restored primary (it had WAL the
    repository had not): the person fences it and converges, which clones it again."""
    from gept import convergence

    lab.sh("ampere-standby", "systemctl stop postgresql@15-main && systemctl mask "
                             "postgresql@15-main && "
                             "rm -f /var/lib/postgresql/15/main/standby.signal")
    result = convergence.converge(extra_args=("--limit", "ampere-standby"))
    assert result.returncode == 0, result.stderr[-3000:]

    def streaming() -> bool:
        out = lab.run("ampere", "cd / && runuser -u postgres -- psql -XAtq -c \"SELECT count(*) "
                                "FROM pg_stat_replication WHERE state = 'streaming'\"").stdout
        return out.strip() == "1"

    wait_for("the re-seeded standby to stream", streaming, timeout=300)
