"""What the lab is made of: host names, published ports, names of Docker objects, paths.

This module is the one place the lab's port mapping lives; ``inventory/lab.py`` and the
``gept lab`` commands both read it (through the state file written by ``gept lab up``).

Environment (all optional):
    GEPT_LAB_PREFIX: prefix of container/network/volume names (default ``gept-lab-``).
    GEPT_LAB_PORT_OFFSET: added to every published port, so a second lab can coexist.
    GEPT_LAB_STATE_DIR: where the key pair, ssh_config, known_hosts and state live
        (default ``~/.local/state/gept/lab``; another prefix gets its own directory).
    GEPT_LAB_EXTRA_CA_DIR: directory of extra trusted CA certificates (``*.crt``) baked into
        the image (default ``/usr/local/share/ca-certificates``; empty string disables).
    GEPT_LAB_MIRROR: Debian mirror for debootstrap and apt (default deb.debian.org).

Example:
    >>> lab = LabTopology.from_env({"GEPT_LAB_PORT_OFFSET": "100"})
    >>> lab.host("ampere").published["ssh"]
    2321
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gept.core.errors import ConfigError

DEFAULT_PREFIX = "gept-lab-"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_EXTRA_CA_DIR = "/usr/local/share/ca-certificates"

# Host name -> service -> (port inside the host, port published on 127.0.0.1 before the
# offset). SSH is the only way in; the service ports are those of production
# (inventory/group_data/all.py).
PORTS: dict[str, dict[str, tuple[int, int]]] = {
    "ampere": {
        "ssh": (22, 2221),
        "engine": (8000, 18000),
        "engine_tls": (443, 18443),
        "status": (8080, 18080),
        "prometheus": (9090, 19090),
        "alertmanager": (9093, 19093),
        "grafana": (3001, 13001),
    },
    "hydra": {
        "ssh": (22, 2222),
    },
    # The database standby (issue 12): streams from ampere, can be promoted in its place.
    "ampere-standby": {
        "ssh": (22, 2223),
    },
}
HOST_NAMES: tuple[str, ...] = tuple(PORTS)
LABEL = "gept.lab"  # every Docker object the lab makes carries this label = the prefix

_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,30}$")


@dataclass(frozen=True)
class LabHost:
    """One lab host: its name (also its hostname and DNS alias), container and ports."""

    name: str
    container: str
    volume: str
    ports: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def published(self) -> dict[str, int]:
        """Service name -> port on 127.0.0.1 of this machine."""
        return {svc: pub for svc, (_inner, pub) in self.ports.items()}

    @property
    def ssh_port(self) -> int:
        """The port on 127.0.0.1 that reaches this host's sshd."""
        return self.ports["ssh"][1]


@dataclass(frozen=True)
class LabTopology:
    """Names, ports and paths of one lab (one prefix)."""

    prefix: str
    port_offset: int
    state_dir: Path
    mirror: str
    extra_ca_dir: Path | None
    hosts: tuple[LabHost, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LabTopology:
        """Build the topology from ``GEPT_LAB_*`` variables (see the module docstring).

        Raises:
            ConfigError: naming the variable when a value is unusable.
        """
        env = os.environ if env is None else env
        prefix = env.get("GEPT_LAB_PREFIX", DEFAULT_PREFIX) or DEFAULT_PREFIX
        if not _PREFIX_RE.match(prefix):
            raise ConfigError(
                f"GEPT_LAB_PREFIX={prefix!r} must be lowercase letters, digits, '-', '_' or '.'",
                field="GEPT_LAB_PREFIX")
        raw_offset = env.get("GEPT_LAB_PORT_OFFSET", "0") or "0"
        try:
            offset = int(raw_offset)
        except ValueError as exc:
            raise ConfigError(f"GEPT_LAB_PORT_OFFSET={raw_offset!r} is not an integer",
                              field="GEPT_LAB_PORT_OFFSET") from exc
        if not 0 <= offset <= 40000:
            raise ConfigError(f"GEPT_LAB_PORT_OFFSET={offset} must be between 0 and 40000",
                              field="GEPT_LAB_PORT_OFFSET")
        state_env = env.get("GEPT_LAB_STATE_DIR")
        if state_env:
            state_dir = Path(state_env).expanduser()
        else:
            base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "gept"
            name = "lab" if prefix == DEFAULT_PREFIX else "lab-" + prefix.strip("-_.")
            state_dir = base / name
        ca_env = env.get("GEPT_LAB_EXTRA_CA_DIR", DEFAULT_EXTRA_CA_DIR)
        hosts = tuple(
            LabHost(
                name=name,
                container=f"{prefix}{name}",
                volume=f"{prefix}{name}-docker",
                ports={svc: (inner, pub + offset) for svc, (inner, pub) in ports.items()},
            )
            for name, ports in PORTS.items()
        )
        return cls(
            prefix=prefix, port_offset=offset, state_dir=state_dir,
            mirror=env.get("GEPT_LAB_MIRROR", DEFAULT_MIRROR) or DEFAULT_MIRROR,
            extra_ca_dir=Path(ca_env) if ca_env else None, hosts=hosts,
        )

    @property
    def network(self) -> str:
        """The user-defined Docker network the hosts share (they resolve each other by name)."""
        return f"{self.prefix}net"

    @property
    def key_path(self) -> Path:
        """The controller's private key for root on the lab hosts (mode 0600)."""
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        """known_hosts with the lab hosts' keys, collected after they start."""
        return self.state_dir / "known_hosts"

    @property
    def ssh_config_path(self) -> Path:
        """An ssh_config with one ``Host`` block per lab host."""
        return self.state_dir / "ssh_config"

    @property
    def state_path(self) -> Path:
        """JSON written by ``gept lab up``; ``inventory/lab.py`` reads it."""
        return self.state_dir / "state.json"

    def host(self, name: str) -> LabHost:
        """The lab host called ``name``.

        Raises:
            InvalidInput: naming the known hosts when ``name`` is not one of them.
        """
        for host in self.hosts:
            if host.name == name:
                return host
        from gept.core.errors import InvalidInput

        raise InvalidInput(f"unknown lab host {name!r}; known: {', '.join(HOST_NAMES)}",
                           field="host")
