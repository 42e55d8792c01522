"""The two parties of a lab test: the agent (``gept-agent``) and the person (root).

The agent's side always runs as the controller account ``gept-agent`` (``runuser``, a clean
environment, from ``/tmp`` so nothing depends on the current directory) with its own key;
the person signs approvals with the lab's approver key, which only root can read. No helper
here ever hands the person's key to the agent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gept.lab.agent import agent_state_dir, approver_key
from gept.lab.topology import LabTopology

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

REPO = Path(__file__).resolve().parents[2]
AGENT = "gept-agent"
AGENT_HOME = Path("/home/gept-agent")
AGENT_GEPT = "/opt/gept-agent/bin/gept"
# The lab under test (GEPT_LAB_PREFIX / GEPT_LAB_PORT_OFFSET): the agent gets the same two
# variables, so its inventory and ssh_config name the same hosts and ports as root's.
_TOPOLOGY = LabTopology.from_env()
LAB_ENV = {k: os.environ[k] for k in ("GEPT_LAB_PREFIX", "GEPT_LAB_PORT_OFFSET")
           if os.environ.get(k)}
AGENT_SSH_CONFIG = agent_state_dir(AGENT_HOME, _TOPOLOGY.state_dir) / "ssh_config"
APPROVER_KEY = approver_key(_TOPOLOGY)


def as_agent(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1200,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as gept-agent with only the environment given (plus HOME and PATH)."""
    base = {"HOME": str(AGENT_HOME), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    pairs = [f"{k}={v}" for k, v in {**base, **LAB_ENV, **(env or {})}.items()]
    return subprocess.run(["runuser", "-u", AGENT, "--", "env", "-i", *pairs, *argv],
                          cwd="/tmp", capture_output=True, text=True, timeout=timeout,
                          check=False, input=stdin)


def agent_gept(*args: str, env: dict[str, str] | None = None,
               timeout: float = 1200) -> tuple[int, dict[str, Any]]:
    """``gept <args> --json`` as the agent: exit code and the last JSON line."""
    proc = as_agent([AGENT_GEPT, *args, "--json"], env=env, timeout=timeout)
    try:
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail(f"no JSON from the agent's `gept {' '.join(args)}` "
                    f"(exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def agent_runbook(*args: str, env: dict[str, str] | None = None,
                  timeout: float = 1200) -> tuple[int, dict[str, Any]]:
    """``gept runbook <args> --inventory <repo>/inventory/lab.py --json`` as the agent."""
    return agent_gept("runbook", *args, "--inventory", str(REPO / "inventory" / "lab.py"),
                      env=env, timeout=timeout)


def agent_ssh(host: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Raw SSH to ``host`` as gept-agent with the agent's own key (no runner involved)."""
    return as_agent(["ssh", "-F", str(AGENT_SSH_CONFIG), host, "--", command], timeout=timeout)


def person_approves(plan: dict[str, Any], reason: str = "lab test", ttl: str = "15m",
                    tmp: Path | None = None) -> str:
    """The person (root) signs the plan's approvals with the lab's approver key."""
    path = (tmp or Path("/tmp")) / f"plan-{plan['plan_hash'][:12]}.json"
    path.write_text(json.dumps(plan))
    proc = subprocess.run([sys.executable, "-m", "gept.cli", "coordinate", "approve", "--plan",
                           str(path), "--reason", reason, "--ttl", ttl, "--key",
                           str(APPROVER_KEY), "--json"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["approvals"][0]["approval"])


def root_psql(lab: LabHandle, sql: str) -> str:
    """SQL on Ampere as the postgres superuser (the test's own eyes, never the agent's)."""
    return lab.sh("ampere", "runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 "
                            f"-d osrs_data -c {shlex.quote(sql)}")


def guarded_state(lab: LabHandle) -> dict[str, str]:
    """What the five danger zones protect, read by root: a change here is a breach."""
    def sha(host: str, path: str) -> str:
        return lab.sh(host, f"sha256sum {path} | cut -c1-64").strip()

    return {
        "postgres_started": root_psql(lab, "SELECT pg_postmaster_start_time()").strip(),
        "predictions_columns": root_psql(lab, (
            "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY column_name) "
            "FROM information_schema.columns WHERE table_name = 'predictions'")).strip(),
        "registry": root_psql(lab, "SELECT string_agg(id || ':' || status, ',' ORDER BY id) "
                                   "FROM model_registry").strip(),
        "hydra_cron": sha("hydra", "/etc/cron.d/gept-inference"),
        "collector_compose": sha("ampere", "/opt/gept/collectors/docker-compose.yml"),
        "collector_env": hashlib.sha256(lab.sh("ampere", (
            "docker ps -q --filter label=com.docker.compose.project=collectors | xargs -r "
            "docker inspect -f '{{.Name}} {{range .Config.Env}}{{println .}}{{end}}' | "
            "grep -E '^/|INTERVAL' | sort")).encode()).hexdigest(),
    }
