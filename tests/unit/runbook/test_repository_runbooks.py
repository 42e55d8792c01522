"""Every runbook in the repository renders to shell that parses, for root and sudo users."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gept.runbook import loader
from gept.runbook.hosts import Host
from gept.runbook.plan import make_plan

REPO = Path(__file__).resolve().parents[3]
CATALOG = loader.load_dir(REPO / "runbooks")
SAMPLES = {"version": "2026.11.28-1", "artifact": "/tmp/release.tar", "sha256": "a" * 64,
           "model_id": "7", "model_path": "global/model.cbm",
           "promote_token": "gept1.abc.def", "collector": "5m"}
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
            if user == "sudo" and step.kind == "sudo":
                assert action.command.startswith("sudo -n ")
