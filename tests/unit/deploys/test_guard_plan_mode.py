"""The deploy guard's plan mode, decided by the real pyinfra CLI (``pyinfra @local``).

Plan mode must come from what pyinfra will do, not from argv words or our environment:
``GEPT_DEPLOY_PLAN_ONLY=1 pyinfra -y``, ``-vy --json`` and ``-y ... --exclude --dry`` all
execute, so none of them is plan mode. Plan mode approves nothing, and a run that was
(wrongly) taken for a plan is stopped by the tripwire before its first operation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PYINFRA = Path(sys.executable).with_name("pyinfra")

PROBE = '''
import json, os
from pyinfra import state
from pyinfra.operations import server
from deploys import guard

if os.environ.get("PROBE_FORCE_PLAN") == "1":
    guard.plan_only = lambda: True          # a wrong decision, to prove the tripwire
guard.detect = lambda current_host=None: {"restart-postgres": [
    {"setting": "max_connections", "from": "100", "to": "110"}]}
decision = {"plan_only": guard.plan_only()}
if decision["plan_only"]:
    decision["approved"] = sorted(guard.check())
with open(os.environ["PROBE_OUT"], "w") as fh:
    json.dump(decision, fh)
server.shell(name="Touch the marker", commands=["touch " + os.environ["PROBE_MARKER"]])
'''


def run_pyinfra(tmp_path: Path, args: list[str], env: dict[str, str] | None = None,
                ) -> tuple[subprocess.CompletedProcess[str], dict[str, object], Path]:
    deploy = tmp_path / "probe_deploy.py"
    deploy.write_text(PROBE)
    out, marker = tmp_path / "decision.json", tmp_path / "marker"
    full = {k: v for k, v in os.environ.items()
            if k not in ("PYINFRA_YES", "GEPT_DEPLOY_PLAN_ONLY")}
    full.update({"PROBE_OUT": str(out), "PROBE_MARKER": str(marker),
                 "PYINFRA_PROGRESS": "off", "PYTHONPATH": str(REPO)}, **(env or {}))
    cmd = [str(PYINFRA), *[a for a in args if a != "DEPLOY"], "@local", str(deploy)]
    if "DEPLOY" in args:  # options placed after the deploy file
        i = args.index("DEPLOY")
        cmd = [str(PYINFRA), *args[:i], "@local", str(deploy), *args[i + 1:]]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=full, check=False)
    decision = json.loads(out.read_text()) if out.exists() else {}
    return proc, decision, marker


@pytest.mark.parametrize(("args", "env", "plan"), [
    (["--dry"], {}, True),
    (["--dry", "--json"], {}, True),
    (["--json"], {}, True),                                   # pyinfra stops: no --yes
    (["-y"], {"GEPT_DEPLOY_PLAN_ONLY": "1"}, False),
    (["-vy", "--json"], {}, False),
    (["-y", "--json", "DEPLOY", "--exclude", "--dry"], {}, False),
    (["--json"], {"PYINFRA_YES": "1"}, False),
], ids=["dry", "dry-json", "json-no-yes", "plan-only-env", "vy-json", "exclude-dry",
        "pyinfra-yes-env"])
def test_plan_mode_is_what_pyinfra_will_do(tmp_path: Path, args: list[str],
                                           env: dict[str, str], plan: bool) -> None:
    proc, decision, marker = run_pyinfra(tmp_path, args, env)
    assert decision.get("plan_only") is plan, (proc.returncode, proc.stderr[-2000:])
    # What pyinfra then did agrees with the decision: a plan executes nothing.
    if plan:
        assert not marker.exists()
        assert proc.returncode == 0, proc.stderr[-2000:]
    else:
        # The probe does not call check() outside plan mode (no approvals in a unit test):
        # pyinfra executed the operation, which is why these invocations must need them.
        assert marker.exists(), proc.stderr[-2000:]


def test_plan_mode_approves_nothing_and_reports_the_zone(tmp_path: Path) -> None:
    proc, decision, marker = run_pyinfra(tmp_path, ["--dry"])
    assert decision == {"plan_only": True, "approved": []}
    zones = [json.loads(line[len("gept-zone: "):]) for line in proc.stderr.splitlines()
             if line.startswith("gept-zone: ")]
    assert [z["zone"] for z in zones] == ["restart-postgres"]
    assert len(zones[0]["plan_hash"]) == 64
    assert not marker.exists()


def test_a_run_wrongly_taken_for_a_plan_is_stopped_before_its_first_operation(
        tmp_path: Path) -> None:
    proc, decision, marker = run_pyinfra(tmp_path, ["-y"], {"PROBE_FORCE_PLAN": "1"})
    assert decision == {"plan_only": True, "approved": []}
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "plan mode approves nothing" in proc.stderr
    assert not marker.exists(), "an operation ran after plan mode withheld approvals"


def test_outside_the_pyinfra_cli_there_is_no_plan_mode() -> None:
    sys.path.insert(0, str(REPO))
    from deploys import guard

    assert guard.plan_only() is False
