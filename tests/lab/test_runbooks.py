"""Every runbook against the converged lab, run by the agent (``gept-agent``, its own key,
the hosts' sudoers), over real SSH, through the real CLI.

Covers: check-health and the four triage runbooks on a healthy lab (and triage naming the
broken part), show-logs, restart-engine, restart-collector, deploy-engine of a broken release
(automatic rollback, the old release keeps serving), of a good one and of one no converge
installed (refused), rollback-engine, restart-postgres (refused without a person's approval,
done with one, spent once by the host's gate), enable-fallback / stop-hydra-inference
(refused while the fallback is off), deploy-model (the gate promotes with an approval), and
two concurrent runs (one gets exit 4).

Needs the deploys' ``converged_lab`` fixture (both hosts converged, a trained model, inference
running). Each test leaves the lab as it found it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from agentside import AGENT_GEPT, REPO, agent_runbook, agent_ssh, person_approves
from breakage import engine_healthy, psql, wait_for

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

ROOT = "/opt/recommendation-engine"
pytestmark = pytest.mark.timeout(1800)


def runbook(*args: str, approval: str | None = None,
            timeout: float = 1200) -> tuple[int, dict[str, Any]]:
    """``gept runbook <args>`` as the agent: exit code and JSON."""
    extra = ["--approval", approval] if approval else []
    return agent_runbook(*args, *extra, timeout=timeout)


def failed_steps(result: dict[str, Any]) -> list[str]:
    return [f"{h}:{s['step']}: {s.get('error')}" for h, d in result["hosts"].items()
            for s in d["steps"] if not s["ok"]]


def approve_plan(name: str, *params: str) -> tuple[str, str]:
    """The agent plans; the person signs that plan (root, the lab's approver key)."""
    code, plan = runbook("plan", name, *params)
    assert code == 0, plan
    return person_approves(plan), plan["plan_hash"]


def current_release(lab: LabHandle) -> str:
    return lab.sh("ampere", f"readlink -f {ROOT}/current").strip()


def installed_copy(lab: LabHandle, name: str, broken: bool = False) -> str:
    """A release a person installs (root): a copy of the current one, optionally broken."""
    release = f"0.0.1+{name}"
    target = f"{ROOT}/releases/{release}"
    lab.sh("ampere", f"rm -rf {target} && cp -a \"$(readlink -f {ROOT}/current)\" {target}")
    if broken:
        lab.sh("ampere", f"printf '#!/bin/sh\\nexit 1\\n' > {target}/venv/bin/gept")
    return release


# ------------------------------------------------------------------ read-only runbooks

def test_check_health_passes(converged: LabHandle) -> None:
    code, result = runbook("run", "check-health")
    assert code == 0, failed_steps(result)
    assert result["status"] == "ok"
    # The run is in Ampere's journal, where the agent cannot rewrite it.
    audit = converged.sh("ampere", "journalctl -q -t gept-runbook -o cat -n 200")
    assert result["run_id"] in audit


@pytest.mark.parametrize("name", ["triage-staleness", "triage-engine", "triage-database",
                                  "triage-collectors"])
def test_triage_on_a_healthy_lab_says_healthy(converged: LabHandle, name: str) -> None:
    code, result = runbook("run", name)
    assert code == 0
    assert result["verdict"]["next"] == "check-health", (result["verdict"],
                                                         failed_steps(result))


def test_triage_engine_names_a_stopped_engine(converged: LabHandle) -> None:
    converged.sh("ampere", "systemctl stop recommendation-engine")
    try:
        code, result = runbook("run", "triage-engine")
    finally:
        converged.sh("ampere", "systemctl start recommendation-engine")
        wait_for("the engine", lambda: engine_healthy(converged))
    assert code == 0
    assert result["verdict"]["next"] == "restart-engine"
    assert "not active" in result["verdict"]["verdict"]


def test_show_logs_is_bounded(converged: LabHandle) -> None:
    code, result = runbook("run", "show-logs", "--param", "service=engine", "--param",
                           "lines=5")
    assert code == 0, failed_steps(result)
    log = result["hosts"]["ampere"]["outputs"]["log"]
    assert 0 < len(log.splitlines()) <= 6  # journalctl may add a "-- Boot" header line
    code, bad = runbook("run", "show-logs", "--param", "lines=100000")
    assert code == 2
    assert bad["field"] == "params.lines"


# ------------------------------------------------------------------ caution runbooks

def test_restart_engine(converged: LabHandle) -> None:
    before = converged.sh("ampere", "systemctl show -p MainPID --value recommendation-engine")
    code, result = runbook("run", "restart-engine")
    assert code == 0, failed_steps(result)
    after = converged.sh("ampere", "systemctl show -p MainPID --value recommendation-engine")
    assert before != after
    assert engine_healthy(converged)


def test_restart_collector(converged: LabHandle) -> None:
    code, result = runbook("run", "restart-collector", "--param", "collector=news")
    assert code == 0, failed_steps(result)
    code, refused = runbook("run", "restart-collector", "--param", "collector=news; reboot")
    assert code == 2
    assert refused["field"] == "params.collector"


def test_two_concurrent_runs_one_gets_exit_4(converged: LabHandle) -> None:
    cmd = ["runuser", "-u", "gept-agent", "--", AGENT_GEPT, "runbook", "run", "restart-engine",
           "--inventory", str(REPO / "inventory" / "lab.py"), "--json"]
    procs = [subprocess.Popen(cmd, cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 4], outs
    locked = json.loads(next(o for p, (o, _e) in zip(procs, outs, strict=True)
                             if p.returncode == 4))
    assert locked["status"] == "locked"
    assert locked["holder"]["run_id"]
    assert engine_healthy(converged)


def test_deploy_engine_broken_release_rolls_back(converged: LabHandle) -> None:
    before = current_release(converged)
    release = installed_copy(converged, f"b{int(time.time()):x}", broken=True)  # hex only
    try:
        code, result = runbook("run", "deploy-engine", "--param", f"release={release}")
        assert code == 1
        assert result["status"] == "rolled_back", failed_steps(result)
        assert result["rollback_taken"] is True
        assert current_release(converged) == before  # the old release is current again
        assert engine_healthy(converged)              # ... and serving
    finally:
        converged.sh("ampere", f"rm -rf {ROOT}/releases/{release}")


def test_deploy_engine_runs_only_what_a_converge_installed(converged: LabHandle,
                                                           tmp_path: Path) -> None:
    before = current_release(converged)
    code, result = runbook("run", "deploy-engine", "--param", "release=9.9.9+0123456789ab")
    assert code == 1
    assert result["status"] == "precondition_failed"
    # The agent's own "release" (a directory it made) is refused by gept-op itself.
    agent_ssh("ampere", "mkdir -p /tmp/evil/venv && touch /tmp/evil/.installed")
    for arg in ("../../../tmp/evil", "/tmp/evil", "9.9.9+0123456789ab; id"):
        proc = agent_ssh("ampere", f"sudo -n /usr/local/sbin/gept-op engine-activate '{arg}'")
        assert proc.returncode != 0, proc.stdout
    assert current_release(converged) == before


@pytest.mark.slow
def test_deploy_engine_good_release_then_rollback_engine(converged: LabHandle) -> None:
    before = current_release(converged)
    release = installed_copy(converged, f"a{int(time.time()):x}")
    try:
        code, result = runbook("run", "deploy-engine", "--param", f"release={release}")
        assert code == 0, failed_steps(result)
        assert current_release(converged) == f"{ROOT}/releases/{release}"
        assert engine_healthy(converged)
        code, result = runbook("run", "rollback-engine")
        assert code == 0, failed_steps(result)
        assert current_release(converged) == before
        assert engine_healthy(converged)
    finally:
        converged.sh("ampere", f"rm -rf {ROOT}/releases/{release}")


# ------------------------------------------------------------------ danger runbooks

def test_restart_postgres_needs_an_approval_and_everything_recovers(
        converged: LabHandle) -> None:
    def started() -> str:
        return psql(converged, "SELECT pg_postmaster_start_time()").strip()

    before = started()
    code, refused = runbook("run", "restart-postgres")
    assert code == 3
    assert refused["status"] == "needs_coordination"
    assert refused["zone"] == "restart-postgres"
    assert refused["hosts"] == ["lab/ampere"]
    assert converged.sh("ampere", "systemctl is-active recommendation-engine").strip() \
        == "active"  # refused before anything was stopped

    approval, plan_hash = approve_plan("restart-postgres")
    assert refused["plan_hash"] == plan_hash
    code, result = runbook("run", "restart-postgres", approval=approval)
    assert code == 0, failed_steps(result)
    assert all(v["ok"] for v in result["verification"]), result["verification"]
    assert started() != before
    assert {v["step"] for v in result["verification"]} >= {"engine-health",
                                                            "collectors-running"}
    assert engine_healthy(converged)
    # Spent: the runner says so, and the host's gate refuses it even over raw SSH.
    code, again = runbook("run", "restart-postgres", approval=approval)
    assert code == 3
    assert "already used" in again["message"]
    after = started()
    raw = agent_ssh("ampere", "sudo -n /usr/local/sbin/gept-gate restart-postgres "
                              f"--plan-hash {plan_hash} --approval '{approval}'")
    assert raw.returncode == 3, raw.stdout + raw.stderr
    assert "already used" in raw.stdout
    assert started() == after


FALLBACK_LINE = r"'^[^#].*gept infer.*--role fallback'"


def test_stop_hydra_inference_refused_while_fallback_off(converged: LabHandle) -> None:
    cron = "/etc/cron.d/gept-inference"
    converged.sh("ampere", f"cp {cron} /root/gept-inference.ampere.bak")
    converged.sh("hydra", f"cp {cron} /root/gept-inference.hydra.bak")
    try:
        converged.sh("ampere", f"sed -i -E 's/^([^#].*--role fallback)/#\\1/' {cron}")
        approval, _ = approve_plan("stop-hydra-inference")
        code, result = runbook("run", "stop-hydra-inference", approval=approval)
        assert code == 1
        assert result["status"] == "precondition_failed"
        assert converged.run("hydra", f"grep -Eq '^[^#].*gept infer' {cron}").returncode == 0

        code, result = runbook("run", "enable-fallback")
        assert code == 0, failed_steps(result)
        assert converged.run("ampere", f"grep -Eq {FALLBACK_LINE} {cron}").returncode == 0

        code, refused = runbook("run", "stop-hydra-inference")
        assert code == 3
        assert refused["zone"] == "stop-hydra-inference"
        # The failed precondition did not use the approval: it works now.
        code, result = runbook("run", "stop-hydra-inference", approval=approval)
        assert code == 0, failed_steps(result)
        assert converged.run("hydra", f"grep -Eq '^[^#].*gept infer' {cron}").returncode == 1
    finally:
        converged.sh("ampere", f"cp /root/gept-inference.ampere.bak {cron}")
        converged.sh("hydra", f"cp /root/gept-inference.hydra.bak {cron}")


def test_deploy_model_promotes_through_the_gate(converged: LabHandle) -> None:
    active = psql(converged, "SELECT id FROM model_registry WHERE status = 'ACTIVE' "
                             "ORDER BY id LIMIT 1").strip()
    assert active, "the converged lab has no ACTIVE model"
    new_id = psql(converged, (
        "INSERT INTO model_registry (scope, run_id, model_path, artifact_sha256, status, "
        "trained_at, windows_hours, offsets_pct, feature_names, item_ids, validation_passed, "
        "validation_auc, mean_auc, metrics) SELECT scope, run_id || '-labtest', model_path, "
        "artifact_sha256, 'PENDING', trained_at, windows_hours, offsets_pct, feature_names, "
        "item_ids, validation_passed, validation_auc, mean_auc, metrics FROM model_registry "
        f"WHERE id = {int(active)} RETURNING id")).strip().splitlines()[0]
    params = ["--param", f"model_id={new_id}"]
    code, refused = runbook("run", "deploy-model", *params)
    assert code == 3
    assert refused["zone"] == "model-registry"

    approval, _ = approve_plan("deploy-model", *params)
    code, result = runbook("run", "deploy-model", *params, approval=approval)
    assert code == 0, failed_steps(result)
    status = psql(converged, f"SELECT status FROM model_registry WHERE id = {int(new_id)}")
    assert status.strip() == "ACTIVE"
    assert engine_healthy(converged)  # the new ACTIVE model is a copy of the old one
