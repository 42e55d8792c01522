"""Every runbook against the converged lab, over real SSH, through the real CLI.

Covers: check-health and the four triage runbooks on a healthy lab (and triage naming the
broken part), show-logs, restart-engine, restart-collector, deploy-engine with a broken release
(automatic rollback, the old release keeps serving) and with a good one, rollback-engine,
restart-postgres (refused without a token, allowed with one, engine and collectors recover),
enable-fallback / stop-hydra-inference (refused while the fallback is off), deploy-model (two
tokens: the plan and Ampere's promote guard), and two concurrent runs (one gets exit 4).

Needs the deploys' ``converged_lab`` fixture (both hosts converged, a trained model, inference
running). Each test leaves the lab as it found it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from breakage import engine_healthy, psql, wait_for

from gept import guards

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

REPO = Path(__file__).resolve().parents[2]
ROOT = "/opt/recommendation-engine"
pytestmark = pytest.mark.timeout(1800)


def runbook(*args: str, token: str | None = None,
            timeout: float = 1200) -> tuple[int, dict[str, Any]]:
    """``gept runbook <args> --inventory inventory/lab.py --json``: exit code and JSON."""
    cmd = [sys.executable, "-m", "gept.cli", "runbook", *args, "--inventory",
           "inventory/lab.py", "--json"]
    if token:
        cmd += ["--token", token]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)
    try:
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail(f"no JSON from `gept runbook {' '.join(args)}` (exit {proc.returncode}):"
                    f"\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def failed_steps(result: dict[str, Any]) -> list[str]:
    return [f"{h}:{s['step']}: {s.get('error')}" for h, d in result["hosts"].items()
            for s in d["steps"] if not s["ok"]]


def approve_plan(name: str, *params: str) -> tuple[str, str]:
    code, plan = runbook("plan", name, *params)
    assert code == 0, plan
    zone = plan["zones"][0]
    return guards.approve(zone, plan["plan_hash"], "lab test", 900), plan["plan_hash"]


def current_release(lab: LabHandle) -> str:
    return lab.sh("ampere", f"readlink -f {ROOT}/current").strip()


# ------------------------------------------------------------------ read-only runbooks

def test_check_health_passes(converged: LabHandle) -> None:
    code, result = runbook("run", "check-health")
    assert code == 0, failed_steps(result)
    assert result["status"] == "ok"
    audit = converged.sh("ampere", "tail -n 50 /var/log/gept/runbook-audit.jsonl")
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
    cmd = [sys.executable, "-m", "gept.cli", "runbook", "run", "restart-engine", "--inventory",
           "inventory/lab.py", "--json"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 4], outs
    locked = json.loads(next(o for p, (o, _e) in zip(procs, outs, strict=True)
                             if p.returncode == 4))
    assert locked["status"] == "locked"
    assert locked["holder"]["run_id"]
    assert engine_healthy(converged)


def _broken_wheelhouse(path: Path) -> None:
    """A wheelhouse whose `gept` installs fine but cannot serve (exits at once)."""
    files = {
        "gept/__init__.py": b"import sys\n\ndef main():\n    sys.exit('broken release')\n",
        "gept-0.0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: gept\nVersion: 0.0.1\n",
        "gept-0.0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: labtest\n"
                                      b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        "gept-0.0.1.dist-info/entry_points.txt": b"[console_scripts]\ngept = gept:main\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("gept-0.0.1.dist-info/RECORD,,")
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("gept-0.0.1.dist-info/RECORD", "\n".join(record) + "\n")
    import tarfile

    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("gept-0.0.1-py3-none-any.whl")
        info.size = len(wheel.getvalue())
        tar.addfile(info, io.BytesIO(wheel.getvalue()))


def test_deploy_engine_broken_release_rolls_back(converged: LabHandle, tmp_path: Path) -> None:
    before = current_release(converged)
    artifact = tmp_path / "broken.tar"
    _broken_wheelhouse(artifact)
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    version = f"labtest-broken-{int(time.time())}"
    code, result = runbook("run", "deploy-engine", "--param", f"version={version}",
                           "--param", f"artifact={artifact}", "--param", f"sha256={sha}",
                           "--param", "extras=none")
    assert code == 1
    assert result["status"] == "rolled_back", failed_steps(result)
    assert result["rollback_taken"] is True
    assert current_release(converged) == before  # the old release is current again
    assert engine_healthy(converged)              # ... and serving
    converged.sh("ampere", f"rm -rf {ROOT}/releases/{version}")


def test_deploy_engine_checksum_mismatch_changes_nothing(converged: LabHandle,
                                                         tmp_path: Path) -> None:
    before = current_release(converged)
    artifact = tmp_path / "any.tar"
    _broken_wheelhouse(artifact)
    code, result = runbook("run", "deploy-engine", "--param", "version=labtest-badsum",
                           "--param", f"artifact={artifact}", "--param", f"sha256={'0' * 64}")
    assert code == 1
    assert result["status"] == "failed"
    assert "verify-checksum" in " ".join(failed_steps(result))
    assert current_release(converged) == before


@pytest.mark.slow
def test_deploy_engine_good_release_then_rollback_engine(converged: LabHandle) -> None:
    from deploys.release import current_release as built_release

    release = built_release()
    before = current_release(converged)
    version = f"labtest-good-{int(time.time())}"
    sha = hashlib.sha256(release.tarball.read_bytes()).hexdigest()
    code, result = runbook("run", "deploy-engine", "--param", f"version={version}",
                           "--param", f"artifact={release.tarball}", "--param", f"sha256={sha}")
    assert code == 0, failed_steps(result)
    assert current_release(converged) == f"{ROOT}/releases/{version}"
    assert engine_healthy(converged)
    code, result = runbook("run", "rollback-engine")
    assert code == 0, failed_steps(result)
    assert current_release(converged) == before
    assert engine_healthy(converged)
    converged.sh("ampere", f"rm -rf {ROOT}/releases/{version}")


# ------------------------------------------------------------------ danger runbooks

def test_restart_postgres_needs_a_token_and_everything_recovers(converged: LabHandle) -> None:
    pid_before = converged.sh("ampere", "systemctl show -p MainPID --value postgresql@15-main"
                                        " || true").strip()
    code, refused = runbook("run", "restart-postgres")
    assert code == 3
    assert refused["status"] == "needs_coordination"
    assert refused["zone"] == "restart-postgres"
    assert converged.sh("ampere", "systemctl is-active recommendation-engine").strip() \
        == "active"  # refused before anything was stopped

    token, plan_hash = approve_plan("restart-postgres")
    assert refused["plan_hash"] == plan_hash
    code, result = runbook("run", "restart-postgres", token=token)
    assert code == 0, failed_steps(result)
    assert all(v["ok"] for v in result["verification"]), result["verification"]
    pid_after = converged.sh("ampere", "systemctl show -p MainPID --value postgresql@15-main"
                                       " || true").strip()
    assert pid_before != pid_after
    code, again = runbook("run", "restart-postgres", token=token)  # single use
    assert code == 3
    assert "already used" in again["message"]
    assert {v["step"] for v in result["verification"]} >= {"engine-health",
                                                            "collectors-running"}
    assert engine_healthy(converged)


FALLBACK_LINE = r"'^[^#].*gept infer.*--role fallback'"


def test_stop_hydra_inference_refused_while_fallback_off(converged: LabHandle) -> None:
    cron = "/etc/cron.d/gept-inference"
    converged.sh("ampere", f"cp {cron} /root/gept-inference.ampere.bak")
    converged.sh("hydra", f"cp {cron} /root/gept-inference.hydra.bak")
    try:
        converged.sh("ampere", f"sed -i -E 's/^([^#].*--role fallback)/#\\1/' {cron}")
        token, _ = approve_plan("stop-hydra-inference")
        code, result = runbook("run", "stop-hydra-inference", token=token)
        assert code == 1
        assert result["status"] == "precondition_failed"
        assert converged.run("hydra", f"grep -Eq '^[^#].*gept infer' {cron}").returncode == 0

        code, result = runbook("run", "enable-fallback")
        assert code == 0, failed_steps(result)
        assert converged.run("ampere", f"grep -Eq {FALLBACK_LINE} {cron}").returncode == 0

        code, refused = runbook("run", "stop-hydra-inference")
        assert code == 3
        assert refused["zone"] == "stop-hydra-inference"
        # The failed precondition did not use the token: the same approval works now.
        code, result = runbook("run", "stop-hydra-inference", token=token)
        assert code == 0, failed_steps(result)
        assert converged.run("hydra", f"grep -Eq '^[^#].*gept infer' {cron}").returncode == 1
    finally:
        converged.sh("ampere", f"cp /root/gept-inference.ampere.bak {cron}")
        converged.sh("hydra", f"cp /root/gept-inference.hydra.bak {cron}")


def test_deploy_model_needs_both_tokens(converged: LabHandle, tmp_path: Path) -> None:
    active = psql(converged, "SELECT id || '|' || model_path || '|' || artifact_sha256 "
                            "FROM model_registry WHERE status = 'ACTIVE' ORDER BY id LIMIT 1")
    assert active.strip(), "the converged lab has no ACTIVE model"
    src_id, model_path, sha = active.strip().split("|")
    new_id = psql(converged, (
        "INSERT INTO model_registry (scope, run_id, model_path, artifact_sha256, status, "
        "trained_at, windows_hours, offsets_pct, feature_names, item_ids, validation_passed, "
        "validation_auc, mean_auc, metrics) SELECT scope, run_id || '-labtest', model_path, "
        "artifact_sha256, 'PENDING', trained_at, windows_hours, offsets_pct, feature_names, "
        "item_ids, validation_passed, validation_auc, mean_auc, metrics FROM model_registry "
        f"WHERE id = {int(src_id)} RETURNING id")).strip().splitlines()[0]
    artifact = tmp_path / "model.bin"
    # Models are trained on Hydra; the artifact may not be on Ampere yet (that is what
    # deploy-model is for): take it from whichever host has it.
    where = next(h for h in ("ampere", "hydra") if converged.run(
        h, f"test -f /var/lib/gept/models/{model_path}").returncode == 0)
    data = converged.sh(where, f"base64 -w0 /var/lib/gept/models/{model_path}")
    artifact.write_bytes(base64.b64decode(data))
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == sha

    promote_hash = guards.plan_hash({"action": "models-promote", "model_id": int(new_id)})
    approved = converged.sh("ampere", (
        "set -a; . /etc/gept/gept.env; set +a; gept coordinate approve --zone model-registry "
        f"--plan-hash {promote_hash} --reason 'lab test' --ttl 15m --json"))
    promote_token = json.loads(approved.strip().splitlines()[-1])["token"]
    params = ["--param", f"model_id={new_id}", "--param", f"artifact={artifact}",
              "--param", f"model_path={model_path}", "--param", f"sha256={sha}",
              "--param", f"promote_token={promote_token}"]
    code, refused = runbook("run", "deploy-model", *params)
    assert code == 3
    assert refused["zone"] == "model-registry"
    assert promote_token not in json.dumps(refused)

    token, _ = approve_plan("deploy-model", *params)
    code, result = runbook("run", "deploy-model", *params, token=token)
    assert code == 0, failed_steps(result)
    assert promote_token not in json.dumps(result)
    status = psql(converged, f"SELECT status FROM model_registry WHERE id = {int(new_id)}")
    assert status.strip() == "ACTIVE"
    assert engine_healthy(converged)
