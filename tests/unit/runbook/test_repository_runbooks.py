"""Every runbook in the repository renders to shell that parses, for root and sudo users, and
every root command it asks sudo for is one the hosts' sudoers allows the agent."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from deploys.tasks.agent import OP_PROGRAM, agent_commands  # noqa: E402
from gept.guards.zones import GATE_PROGRAM  # noqa: E402
from gept.inventory import Host  # noqa: E402
from gept.runbook import loader  # noqa: E402
from gept.runbook.plan import make_plan  # noqa: E402

CATALOG = loader.load_dir(REPO / "runbooks")
SAMPLES = {"version": "2026.11.28-1", "artifact": "/tmp/release.tar", "sha256": "a" * 64,
           "model_id": "7", "model_path": "global/model.cbm",
           "promote_token": "gept1.abc.def", "collector": "5m",
           "release": "0.1.0+3f2a9c0d1e2b"}
ALLOWED = set(agent_commands(SimpleNamespace(collectors_dir="/opt/gept/collectors"),
                             ["ampere", "hydra"]))
_SUDO_RE = re.compile(r"sudo -n (?:-- )?([^|;&]+)")
HOSTS = {
    "root": [Host("ampere", ("ampere",), {"ssh_user": "root"}),
             Host("hydra", ("hydra",), {"ssh_user": "root"})],
    "sudo": [Host("ampere", ("ampere",), {"ssh_user": "ubuntu"}),
             Host("hydra", ("hydra",), {"ssh_user": "ubuntu"})],
}


@pytest.mark.parametrize("user", sorted(HOSTS))
@pytest.mark.parametrize("name", sorted(CATALOG.runbooks))
def test_rendered_commands_parse(name: str, user: str) -> None:
    rb = CATALOG.runbooks[name]
    params = {k: SAMPLES[k] for k, p in rb.parameters.items() if p.required}
    hosts = HOSTS[user]

    def hosts_for(selector: str) -> list[Host]:
        return [h for h in hosts if h.matches(selector)]

    plan = make_plan(CATALOG, name, params, hosts_for(rb.targets), hosts_for)
    assert plan.steps
    for step in plan.steps:
        for host, action in step.actions.items():
            if action.upload is not None or action.command.startswith("pyinfra"):
                continue
            proc = subprocess.run(["sh", "-n", "-c", action.secret_command],
                                  capture_output=True, text=True, timeout=10, check=False)
            assert proc.returncode == 0, f"{name}/{step.name}@{host}: {proc.stderr}"
            if user == "sudo" and step.kind in ("sudo", "gate"):
                assert action.command.startswith("sudo -n ")
            for asked in _SUDO_RE.findall(action.command if user == "sudo" else ""):
                argv = shlex.split(asked)
                allowed = argv[0] in (GATE_PROGRAM, OP_PROGRAM) or shlex.join(argv) in ALLOWED
                assert allowed, f"{name}/{step.name}: sudoers does not allow {asked!r}"
