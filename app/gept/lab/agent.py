"""The agent's body in the lab, and the person's key: who holds what on the controller.

``gept lab up`` (run by root, the person in the lab) makes:

* the controller account ``gept-agent`` with its own SSH key pair and its own view of the lab
  (``~gept-agent/.local/state/gept/<lab>/``: state, known_hosts, ssh_config with
  ``User gept-agent``), so ``gept runbook``, ``gept mcp`` and ``gept lab ssh`` run by that
  account reach the hosts as ``gept-agent`` (authorized there by the deploys);
* the person's approval key, ``approver_ed25519`` in root's lab state (0600, root only); its
  public half is the lab inventory's ``approvers`` entry ``lab-person``;
* the agent's ``gept`` (``/opt/gept-agent/bin/gept``): Debian's python3 in a root-owned venv
  that reads this controller's installed packages (the controller's own interpreter may live
  in root's home, which the agent cannot enter);
* the controller's audit appender (``/usr/local/sbin/gept-audit-append``) and the one sudo
  rule that lets ``gept-agent`` append to root's audit trail, nothing else.

Example:
    >>> agent_state_dir(Path("/home/gept-agent"), Path("/root/.local/state/gept/lab"))
    PosixPath('/home/gept-agent/.local/state/gept/lab')
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import Any

from gept.guards import appender
from gept.guards.zones import AGENT_ACCOUNT
from gept.lab.keys import ensure_keypair, write_ssh_config
from gept.lab.proc import run
from gept.lab.topology import LabTopology

AGENT_ROOT = Path("/opt/gept-agent")
AGENT_GEPT = AGENT_ROOT / "bin" / "gept"  # the agent's `gept` (root-owned, read-only to it)
APPENDER_LIB = Path("/usr/local/lib/gept/audit_append.py")
APPENDER_BIN = Path("/usr/local/sbin/gept-audit-append")
SUDOERS = Path("/etc/sudoers.d/gept-agent-audit")
PERSON = "lab-person"


def agent_state_dir(home: Path, root_state_dir: Path) -> Path:
    """Where the agent's view of this lab lives (same lab name, the agent's home)."""
    return home / ".local" / "state" / "gept" / root_state_dir.name


def approver_key(topology: LabTopology) -> Path:
    """The person's signing key in the lab (root's state directory)."""
    return topology.state_dir / "approver_ed25519"


def ensure_person(topology: LabTopology) -> dict[str, str]:
    """The person's key pair; returns the inventory's ``approvers`` mapping."""
    pub = ensure_keypair(approver_key(topology), comment=f"{PERSON}@gept-lab")
    return {PERSON: pub}


def _account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(AGENT_ACCOUNT)
    except KeyError:
        run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment",
             "GePT agent (runbooks, MCP)", AGENT_ACCOUNT], timeout=30, what="useradd")
        return pwd.getpwnam(AGENT_ACCOUNT)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, gid)


def ensure_agent(topology: LabTopology, state: dict[str, Any]) -> dict[str, Any]:
    """Create the agent's account and its view of the lab; returns what root's state adds.

    Only root can do this (the lab is then the person's); any other account gets ``{}``.
    """
    if os.geteuid() != 0:
        return {}
    entry = _account()
    home = Path(entry.pw_dir)
    agent_dir = agent_state_dir(home, topology.state_dir)
    agent_dir.mkdir(parents=True, exist_ok=True)
    for parent in (home / ".local", home / ".local" / "state", home / ".local" / "state" / "gept"):
        os.chown(parent, entry.pw_uid, entry.pw_gid)
    agent = LabTopology(prefix=topology.prefix, port_offset=topology.port_offset,
                        state_dir=agent_dir, mirror=topology.mirror,
                        extra_ca_dir=topology.extra_ca_dir, hosts=topology.hosts)
    public_key = ensure_keypair(agent.key_path, comment=f"{AGENT_ACCOUNT}@gept-lab")
    shutil.copyfile(topology.known_hosts_path, agent.known_hosts_path)
    write_ssh_config(agent, user=AGENT_ACCOUNT)
    mine = {**state, "state_dir": str(agent_dir), "ssh_key": str(agent.key_path),
            "known_hosts": str(agent.known_hosts_path), "ssh_config": str(agent.ssh_config_path),
            "ssh_user": AGENT_ACCOUNT}
    agent.state_path.write_text(json.dumps(mine, indent=2, sort_keys=True) + "\n")
    os.chmod(agent.state_path, 0o600)
    _chown_tree(agent_dir, entry.pw_uid, entry.pw_gid)
    install_appender()
    install_agent_gept()
    return {"agent_public_key": public_key, "agent_state_dir": str(agent_dir),
            "agent_gept": str(AGENT_GEPT)}


def install_agent_gept() -> None:
    """``/opt/gept-agent/bin/gept`` for the agent's account (idempotent, root-owned)."""
    import sysconfig

    venv = AGENT_ROOT / "venv"
    if not (venv / "bin" / "python").exists():
        run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], timeout=120,
            what="python3 -m venv")
    purelib = sysconfig.get_paths()["purelib"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    pth = venv / "lib" / version / "site-packages" / "gept-controller.pth"
    pth.parent.mkdir(parents=True, exist_ok=True)
    # addsitedir (not a plain path line) so the controller's own .pth files, the editable
    # install of this repository among them, are processed too.
    pth.write_text(f"import site; site.addsitedir({purelib!r})\n")
    AGENT_GEPT.parent.mkdir(parents=True, exist_ok=True)
    AGENT_GEPT.write_text(f"#!/bin/sh\nexec {venv}/bin/python -m gept.cli \"$@\"\n")
    os.chmod(AGENT_GEPT, 0o755)  # noqa: S103 - a program the agent runs (root-owned)


def install_appender() -> None:
    """The root-owned audit appender and the sudo rule for it (idempotent)."""
    APPENDER_LIB.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(appender.__file__, APPENDER_LIB)
    os.chmod(APPENDER_LIB, 0o644)
    APPENDER_BIN.write_text(f"#!/bin/sh\nexec /usr/bin/python3 -I {APPENDER_LIB}\n")
    os.chmod(APPENDER_BIN, 0o755)  # noqa: S103 - a program everyone may run (root-owned)
    if SUDOERS.parent.is_dir():
        tmp = SUDOERS.with_name(".gept-agent-audit.tmp")
        tmp.write_text(f"# Written by `gept lab up`: the agent may append to root's audit "
                       f"trail, nothing more.\n{AGENT_ACCOUNT} ALL=(root) NOPASSWD: "
                       f"{APPENDER_BIN}\n")
        os.chmod(tmp, 0o440)
        run(["visudo", "-cf", str(tmp)], timeout=30, what="visudo")
        tmp.replace(SUDOERS)
    Path("/var/log/gept").mkdir(mode=0o755, exist_ok=True)
