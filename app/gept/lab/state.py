"""The lab state file (``<state dir>/state.json``) and the inventory data derived from it.

``gept lab up`` writes the state; ``inventory/lab.py`` turns it into pyinfra host data.
When the lab is down the data still resolves (from the topology) so that the inventory
loads and plans; only the host keys are missing then.

Example:
    >>> data = host_data(LabTopology.from_env({"GEPT_LAB_STATE_DIR": "/tmp/x"}))
    >>> data["ampere"]["ssh_port"], data["ampere"]["env"]
    (2221, 'lab')
"""

from __future__ import annotations

import json
import os
from typing import Any

from gept.lab.topology import LabTopology


def read_state(topology: LabTopology) -> dict[str, Any]:
    """The last state ``gept lab up`` wrote, or ``{}`` when there is none."""
    try:
        data: Any = json.loads(topology.state_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(topology: LabTopology, state: dict[str, Any]) -> None:
    """Replace the state file atomically (mode 0600)."""
    path = topology.state_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def clear_state(topology: LabTopology) -> None:
    """Forget the running lab (its host keys and addresses); keep the key pair."""
    for path in (topology.state_path, topology.known_hosts_path):
        path.unlink(missing_ok=True)


def host_data(topology: LabTopology | None = None) -> dict[str, dict[str, Any]]:
    """Pyinfra host data for every lab host, by host name.

    Keys (the contract other code reads):
        ssh_hostname, ssh_port, ssh_user, ssh_key, ssh_known_hosts_file,
        ssh_strict_host_key_checking ("yes"), ssh_allow_agent / ssh_look_for_keys (False),
        lab_ssh_config (the lab's ssh_config for `ssh -F`), env ("lab"), lab_container,
        lab_internal_address (the name other lab hosts use, e.g. "ampere"),
        published_ports ({service: port on 127.0.0.1}),
        service_ports ({service: port inside the host}),
        ssh_host_public_key (the host's ed25519 key line; "" while the lab is down),
        extra_trusted_cas (controller paths of the extra CA certificates baked into the
        lab image; a deploy may install the same list on hosts behind a TLS-inspecting proxy),
        inventory_id ("lab": approvals name ``lab/<host>``), approvers (the person's public
        key), agent_authorized_keys (the agent's public key, authorized for gept-agent).
    """
    topology = topology or LabTopology.from_env()
    state = read_state(topology)
    state_hosts: dict[str, Any] = state.get("hosts", {})
    agent_keys = [state["agent_public_key"]] if state.get("agent_public_key") else []
    ca_dir = topology.extra_ca_dir
    cas = sorted(str(p) for p in ca_dir.glob("*.crt")) if ca_dir and ca_dir.is_dir() else []
    out: dict[str, dict[str, Any]] = {}
    for host in topology.hosts:
        live: dict[str, Any] = state_hosts.get(host.name, {})
        out[host.name] = {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": int(live.get("ssh_port", host.ssh_port)),
            # root for the person; gept-agent in the agent's own view (gept.lab.agent)
            "ssh_user": str(state.get("ssh_user", "root")),
            "ssh_key": str(topology.key_path),
            "ssh_known_hosts_file": str(topology.known_hosts_path),
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
            "lab_ssh_config": str(topology.ssh_config_path),
            "env": "lab",
            "lab_container": host.container,
            "lab_internal_address": host.name,
            "published_ports": dict(live.get("published_ports", host.published)),
            "service_ports": {svc: inner for svc, (inner, _pub) in host.ports.items()},
            "ssh_host_public_key": str(live.get("ssh_host_public_key", "")),
            "extra_trusted_cas": cas,
            "inventory_id": "lab",
            "approvers": dict(state.get("approvers", {})),
            "agent_authorized_keys": agent_keys,
        }
    return out
