"""Lab host containers: create, start, wait for systemd and sshd, remove.

Flags are the set measured to work on this kind of VM (systemd and nested Docker run, nothing
of the machine's own is reachable): every capability but
CAP_SYS_RESOURCE (this VM's bounding set lacks it, so ``--privileged`` fails), seccomp
unconfined (nested containers need session keyrings), a writable cgroup mount for systemd,
and a named volume at /var/lib/docker so the nested engine can use overlay2. CAP_SYS_TIME
is dropped too: a time daemon inside a lab host must never set this machine's clock.

Example:
    >>> argv = run_argv(LabTopology.from_env({"GEPT_LAB_STATE_DIR": "/tmp/x"}).hosts[0],
    ...                 LabTopology.from_env({"GEPT_LAB_STATE_DIR": "/tmp/x"}), "img:1")
    >>> "127.0.0.1:2221:22" in argv
    True
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from gept.core.errors import Failed
from gept.lab.engine import DockerEngine
from gept.lab.proc import run
from gept.lab.topology import LABEL, LabHost, LabTopology

log = logging.getLogger(__name__)

BOOT_TIMEOUT = 120.0
SSH_TIMEOUT = 60.0
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key.pub"


@dataclass(frozen=True)
class ContainerInfo:
    """What ``docker inspect`` says about a lab host container."""

    name: str
    status: str  # running, exited, created, ... ; "missing" when there is no container
    image: str
    address: str


def run_argv(host: LabHost, topology: LabTopology, image: str) -> list[str]:
    """The ``docker run`` arguments (after ``docker``) that start ``host``."""
    argv = [
        "run", "-d", "--name", host.container, "--hostname", host.name,
        "--network", topology.network, "--network-alias", host.name,
        "--label", f"{LABEL}={topology.prefix}", "--label", f"{LABEL}.host={host.name}",
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--cap-drop", "SYS_TIME",
        "--security-opt", "seccomp=unconfined",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "-v", f"{host.volume}:/var/lib/docker",
        "--shm-size", "256m",
        "--stop-timeout", "30",
    ]
    for inner, published in host.ports.values():
        argv += ["-p", f"127.0.0.1:{published}:{inner}"]
    return [*argv, image]


def inspect(engine: DockerEngine, host: LabHost, topology: LabTopology) -> ContainerInfo:
    """The container's status, image and address on the lab network."""
    proc = engine.docker("container", "inspect", host.container, timeout=30, check=False)
    if proc.returncode != 0:
        return ContainerInfo(host.container, "missing", "", "")
    doc: Any = json.loads(proc.stdout)[0]
    nets = doc.get("NetworkSettings", {}).get("Networks", {}) or {}
    address = (nets.get(topology.network) or {}).get("IPAddress", "")
    return ContainerInfo(host.container, doc["State"]["Status"], doc["Config"]["Image"], address)


def ensure_network(engine: DockerEngine, topology: LabTopology) -> bool:
    """Create the lab's user-defined network if it is missing; True when created."""
    if engine.docker("network", "inspect", topology.network, timeout=30,
                     check=False).returncode == 0:
        return False
    engine.docker("network", "create", "--label", f"{LABEL}={topology.prefix}",
                  topology.network, timeout=60)
    return True


def ensure_host(engine: DockerEngine, host: LabHost, topology: LabTopology,
                image: str) -> str:
    """Make ``host`` run: reuse a running container, start a stopped one, or create it.

    Returns:
        "reused", "started" or "created".
    """
    info = inspect(engine, host, topology)
    if info.status == "running":
        return "reused"
    if info.status in ("exited", "created"):
        engine.docker("start", host.container, timeout=60, what=f"starting {host.name}")
        return "started"
    if info.status != "missing":  # paused, dead, restarting: start over
        engine.docker("rm", "-f", host.container, timeout=60)
    engine.docker("volume", "create", "--label", f"{LABEL}={topology.prefix}", host.volume,
                  timeout=30)
    try:
        engine.docker(*run_argv(host, topology, image), timeout=120,
                      what=f"docker run of lab host {host.name}")
    except Failed as exc:
        # A half-made container (e.g. its port was taken) would fail the same way on the
        # next `up`; remove it so a retry starts clean.
        engine.docker("rm", "-f", host.container, timeout=60, check=False)
        hint = (" (another lab or program uses that port: set GEPT_LAB_PORT_OFFSET, "
                "e.g. 100, and GEPT_LAB_PREFIX)" if "already allocated" in exc.message
                or "address already in use" in exc.message else "")
        raise Failed(exc.message + hint, host=host.name) from exc
    return "created"


def system_state(engine: DockerEngine, host: LabHost) -> str:
    """``systemctl is-system-running`` inside the host ("" when it cannot be asked)."""
    proc = engine.docker("exec", host.container, "systemctl", "is-system-running",
                         timeout=20, check=False)
    return proc.stdout.strip()


def wait_booted(engine: DockerEngine, host: LabHost, timeout: float = BOOT_TIMEOUT) -> str:
    """Wait until systemd reports ``running`` or ``degraded``; return that state.

    Raises:
        Failed: with the last state and the failed units when the boot does not finish.
    """
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = system_state(engine, host)
        if state in ("running", "degraded"):
            return state
        time.sleep(0.3)
    failed = engine.docker("exec", host.container, "systemctl", "--failed", "--no-legend",
                           timeout=20, check=False).stdout.strip()
    raise Failed(f"lab host {host.name} did not boot within {timeout:.0f} s "
                 f"(systemd state {state or 'unknown'!r}; failed units: {failed or 'none'})",
                 host=host.name)


def install_authorized_key(engine: DockerEngine, host: LabHost, public_key: str) -> None:
    """Put the controller's key into root's authorized_keys (once)."""
    keys = "/root/.ssh/authorized_keys"
    script = (f'set -e; umask 077; mkdir -p /root/.ssh; touch {keys}; '
              f'grep -qxF "$1" {keys} || echo "$1" >> {keys}')
    engine.docker("exec", host.container, "sh", "-c", script, "sh", public_key, timeout=30,
                  what=f"installing the SSH key on {host.name}")


def host_public_key(engine: DockerEngine, host: LabHost, timeout: float = 30.0) -> str:
    """The host's own ed25519 public key, read out of band (via docker exec).

    Raises:
        Failed: when the key does not appear (the host-key unit failed).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = engine.docker("exec", host.container, "cat", HOST_KEY_PATH, timeout=20,
                             check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
        time.sleep(0.3)
    raise Failed(f"lab host {host.name} has no SSH host key at {HOST_KEY_PATH}", host=host.name)


def wait_ssh(topology: LabTopology, host: LabHost, timeout: float = SSH_TIMEOUT) -> None:
    """Wait until ``ssh`` (strict host-key checking, the lab key) runs ``true`` on ``host``.

    Raises:
        Failed: with ssh's last error when it does not succeed in time.
    """
    deadline = time.monotonic() + timeout
    error = ""
    while time.monotonic() < deadline:
        proc = run(["ssh", "-F", str(topology.ssh_config_path), host.name, "true"],
                   timeout=15, check=False, what=f"ssh {host.name}")
        if proc.returncode == 0:
            return
        error = proc.stderr.strip()
        time.sleep(0.5)
    raise Failed(f"sshd on lab host {host.name} (127.0.0.1:{host.ssh_port}) did not answer "
                 f"within {timeout:.0f} s: {error}", host=host.name)


def remove_all(engine: DockerEngine, topology: LabTopology) -> dict[str, list[str]]:
    """Remove every container, volume and the network carrying this lab's label."""
    label = f"label={LABEL}={topology.prefix}"
    removed: dict[str, list[str]] = {"containers": [], "volumes": [], "networks": []}
    names = engine.docker("ps", "-a", "--filter", label, "--format", "{{.Names}}",
                          timeout=30).stdout.split()
    if names:
        # -f kills at once: the hosts are disposable, and a graceful stop with nested
        # containers running waits out the full stop timeout.
        engine.docker("rm", "-f", "-v", *names, timeout=120, what="removing lab hosts")
        removed["containers"] = names
    vols = engine.docker("volume", "ls", "-q", "--filter", label, timeout=30).stdout.split()
    if vols:
        engine.docker("volume", "rm", "-f", *vols, timeout=120, what="removing lab volumes")
        removed["volumes"] = vols
    nets = engine.docker("network", "ls", "-q", "--filter", label, "--format", "{{.Name}}",
                         timeout=30).stdout.split()
    for net in nets:
        engine.docker("network", "rm", net, timeout=60, what="removing the lab network")
        removed["networks"].append(net)
    return removed
