"""The lab's SSH material, kept outside the repository in the lab state directory.

* ``id_ed25519`` (0600) / ``id_ed25519.pub``: the controller's key for root on the hosts (the
  agent's own view of the lab has its own pair, for ``gept-agent``: :mod:`gept.lab.agent`);
* ``known_hosts``: each host's own key, read through ``docker exec`` after it starts, so SSH
  from the controller checks host keys in the lab exactly as in production;
* ``ssh_config``: ``ssh -F <state>/ssh_config ampere`` works.

Example:
    >>> from pathlib import Path
    >>> known_hosts_line(2221, "ssh-ed25519 AAAAC3Nza root@ampere")
    '[127.0.0.1]:2221 ssh-ed25519 AAAAC3Nza'
"""

from __future__ import annotations

import os
from pathlib import Path

from gept.core.errors import Failed
from gept.lab.proc import run
from gept.lab.topology import LabTopology


def ensure_keypair(key_path: Path, comment: str = "gept-lab-controller") -> str:
    """Create the ed25519 key pair once; return the public key line.

    Raises:
        Failed: when ssh-keygen fails, or the private key is readable by others.
    """
    key_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(key_path.parent, 0o700)
    pub = key_path.with_suffix(".pub")
    if not key_path.exists() or not pub.exists():
        key_path.unlink(missing_ok=True)
        pub.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
             "-f", str(key_path)], timeout=30, what="ssh-keygen")
    os.chmod(key_path, 0o600)
    return pub.read_text().strip()


def known_hosts_line(port: int, host_public_key: str) -> str:
    """One known_hosts entry for a host reached at 127.0.0.1:``port``.

    Raises:
        Failed: when ``host_public_key`` is not ``<type> <base64> [comment]``.
    """
    parts = host_public_key.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
        raise Failed(f"not an SSH public key: {host_public_key[:60]!r}")
    return f"[127.0.0.1]:{port} {parts[0]} {parts[1]}"


def write_known_hosts(path: Path, entries: dict[int, str]) -> None:
    """Replace ``path`` with one line per (published SSH port, host public key)."""
    lines = [known_hosts_line(port, key) for port, key in sorted(entries.items())]
    _write_private(path, "".join(line + "\n" for line in lines))


def write_ssh_config(topology: LabTopology, user: str = "root") -> None:
    """Write ``ssh_config``: one block per host, then the settings they share."""
    names: list[str] = []
    blocks = ["# Written by `gept lab up`; rewritten on every up.\n"]
    for host in topology.hosts:
        names += [host.name, host.container]
        blocks.append(f"Host {host.name} {host.container}\n"
                      f"    HostName 127.0.0.1\n    Port {host.ssh_port}\n")
    blocks.append(
        f"Host {' '.join(names)} 127.0.0.1\n"
        f"    User {user}\n"
        f"    IdentityFile {topology.key_path}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {topology.known_hosts_path}\n"
        "    StrictHostKeyChecking yes\n"
        "    BatchMode yes\n"
        "    ConnectTimeout 5\n"
        "    LogLevel ERROR\n"
    )
    _write_private(topology.ssh_config_path, "\n".join(blocks))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
