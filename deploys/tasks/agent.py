"""The agent's account on a host, and what stops it: sudoers, the gate, allowed signers.

``gept-agent`` logs in with the keys in ``agent_authorized_keys`` (the lab's agent key; none
in production until the operators add one). Its sudo covers the exact commands its safe and
caution runbooks run (:func:`agent_commands`), ``gept-op`` (fixed verbs) and ``gept-gate``,
which performs a danger-zone action only with a person's approval signed by a key in
``approvers`` (installed as ``/etc/gept/allowed_signers``). It reads journals
(``systemd-journal``) and nothing secret: not in ``gept``, ``docker`` or ``postgres``. Every
command it runs over SSH passes sshd's ``ForceCommand`` (``gept-agent-shell``), which writes
it and its exit status to the journal; it may forward nothing.
"""

from __future__ import annotations

import json
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, server

from deploys.managed import Dir, directories_present, files_present, literal, rendered
from gept.guards.signers import Signers
from gept.guards.zones import AGENT_ACCOUNT, GATE_PROGRAM

OP_PROGRAM = "/usr/local/sbin/gept-op"
AGENT_SHELL = "/usr/local/sbin/gept-agent-shell"
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/gept-agent.conf"
COLLECTORS = ("5m", "latest", "1h", "items", "news", "players")


def agent_commands(data: Any, roles: list[str]) -> list[str]:
    """The exact root commands of the agent's runbooks on a host of these roles."""
    commands: list[str] = []
    if "ampere" in roles:
        unit = "recommendation-engine.service"
        compose = f"/usr/bin/docker-compose -f {data.collectors_dir}/docker-compose.yml"
        commands += [f"/usr/bin/systemctl {verb} {unit}" for verb in ("restart", "start", "stop")]
        # Starting a stopped PostgreSQL is a rollback, not a danger zone (restart/stop are).
        commands += ["/usr/bin/systemctl start postgresql.service"]
        commands += [f"{compose} {args}" for args in (
            "ps --services --filter status=running", "config --services", "ps -a",
            "stop -t 30", "start")]
        commands += [f"{compose} restart collector-{name}" for name in COLLECTORS]
    return commands


def host_facts(data: Any, roles: list[str]) -> dict[str, Any]:
    """``/etc/gept/host.json``: the identity approvals name, and the role's paths; on a
    database host also its database peers (name -> address), the only hosts the gate's
    switchover may hand the primary role to (``gept.gate.standby``)."""
    from deploys.tasks.standby import database_hosts, db_address, is_database_host

    facts: dict[str, Any] = {
        "identity": f"{data.inventory_id}/{host.name}", "app_root": data.app_root,
        "collectors_dir": str(data.get("collectors_dir", "")),
        "inference_cron": "/etc/cron.d/gept-inference",
        "inference_log": f"{data.log_dir}/inference.log", "roles": ",".join(roles)}
    if is_database_host():
        facts["postgres_version"] = str(data.postgres_version)
        facts["db_peers"] = {d.name: db_address(d) for d in database_hosts()
                             if d.name != host.name}
    return facts


@deploy("Configure the agent's account and the host gate")
def configure_agent(roles: list[str]) -> None:
    """The account, its keys, its sudo rules, the gate and the allowed signers."""
    data = host.data
    signers = Signers.from_mapping(dict(data.get("approvers") or {}))
    apt.packages(name="Install sudo", packages=["sudo"], no_recommends=True)
    server.user(name="Create the agent's account", user=AGENT_ACCOUNT, home="/home/gept-agent",
                shell="/bin/bash", create_home=True, groups=["systemd-journal"],
                public_keys=list(data.get("agent_authorized_keys") or []),
                delete_keys=True)
    python = f"{data.app_root}/current/venv/bin/python"
    files_present(name="Install the gate, the operations helper and the allowed signers",
                  files=[
        rendered("agent/wrapper.sh.j2", GATE_PROGRAM, mode="0755", python=python,
                 module="gept.gate"),
        rendered("agent/wrapper.sh.j2", OP_PROGRAM, mode="0755", python=python,
                 module="gept.gate.ops"),
        literal(signers.allowed_signers_text() or "# no approvers configured\n",
                f"{data.config_dir}/allowed_signers", mode="0644"),
        literal(json.dumps(host_facts(data, roles), indent=2, sort_keys=True) + "\n",
                f"{data.config_dir}/host.json", mode="0644"),
        literal("d /run/lock/gept-runbook 1777 root root -\n",
                "/etc/tmpfiles.d/gept-runbook.conf"),
        rendered("agent/sudoers.j2", "/etc/sudoers.d/gept-agent", mode="0440",
                 agent=AGENT_ACCOUNT, gate=GATE_PROGRAM, op=OP_PROGRAM,
                 commands=agent_commands(data, roles)),
    ])
    recorded = files_present(name="Record every SSH command of the agent", files=[
        rendered("agent/gept-agent-shell.sh.j2", AGENT_SHELL, mode="0755", agent=AGENT_ACCOUNT),
        rendered("agent/sshd.conf.j2", SSHD_DROP_IN, agent=AGENT_ACCOUNT, shell=AGENT_SHELL),
    ])
    server.shell(name="Check sshd's configuration and reload it", commands=[
        "sshd -t", "systemctl reload ssh.service"], _if=recorded.did_change)
    directories_present(name="Create the approvals ledger and the runbook locks", dirs=[
        Dir("/var/lib/gept/approvals", "0700"), Dir("/run/lock/gept-runbook", "1777")])
