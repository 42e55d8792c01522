"""Hosts for the runner, from the one pyinfra inventory (through :mod:`gept.inventory`).

The runner never keeps a second list of hosts: it reads the same inventory files as the
deploys and the checks, and connects with the same adapter (host keys always checked).

Example:
    >>> hosts = select_hosts(Path("inventory/lab.py"), "ampere")  # from the repository root
    >>> hosts[0].name
    'ampere'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gept import inventory as shared
from gept.core.errors import InvalidInput

DEFAULT_INVENTORY = Path(__file__).resolve().parents[3] / "inventory" / "production.py"
HOST_AUDIT_LOG = "/var/log/gept/runbook-audit.jsonl"
HOST_LOCK_DIR = "/var/lock/gept-runbook"


@dataclass(frozen=True)
class Host:
    """One target host as the runner sees it (wrapping the inventory's host)."""

    name: str
    groups: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    inventory_host: Any = field(default=None, hash=False, compare=False, repr=False)

    @property
    def hostname(self) -> str:
        """The address connected to."""
        return str(self.data.get("ssh_hostname") or self.name)

    @property
    def user(self) -> str | None:
        """The SSH user, when the inventory names one."""
        user = self.data.get("ssh_user")
        return str(user) if user else None

    @property
    def is_root(self) -> bool:
        """Connected as root: sudo steps run directly."""
        return self.user == "root"

    @property
    def audit_log(self) -> str:
        """Where this host keeps the runbook audit log (data ``gept_runbook_audit_log``)."""
        return str(self.data.get("gept_runbook_audit_log", HOST_AUDIT_LOG))

    @property
    def lock_dir(self) -> str:
        """Where this host keeps runbook locks (data ``gept_runbook_lock_dir``)."""
        return str(self.data.get("gept_runbook_lock_dir", HOST_LOCK_DIR))

    @property
    def port(self) -> int:
        """The SSH port connected to."""
        return int(self.data.get("ssh_port") or 22)

    @property
    def identity(self) -> str:
        """``<inventory>/<host>`` (e.g. ``lab/ampere``): what approvals name and what the
        host's gate knows itself as (``/etc/gept/host-identity``)."""
        return f"{self.data.get('inventory_id', 'unnamed')}/{self.name}"

    def resolved(self) -> dict[str, Any]:
        """Where a plan will really connect: part of the plan hash."""
        return {"name": self.name, "identity": self.identity, "address": self.hostname,
                "port": self.port, "user": self.user, "groups": sorted(self.groups)}

    def connection(self) -> Any:
        """A ``fabric.Connection`` that refuses unknown host keys (from gept.inventory)."""
        return shared.fabric_connection(self.inventory_host)

    def matches(self, selector: str) -> bool:
        """True when ``selector`` names this host or one of its groups."""
        return selector in (self.name, self.hostname) or selector in self.groups


def _wrap(h: Any) -> Host:
    return Host(name=h.name, groups=tuple(h.groups), data=dict(h.data), inventory_host=h)


def load_hosts(path: Path | None = None) -> list[Host]:
    """Every host of an inventory file (default ``inventory/production.py``).

    Raises:
        InvalidInput: the file does not exist or cannot be read.
    """
    path = path or DEFAULT_INVENTORY
    if not path.is_file():
        raise InvalidInput(f"inventory {path} does not exist", field="inventory")
    return [_wrap(h) for h in shared.load_inventory(path).hosts]


def select_hosts(path: Path | None, target: str) -> list[Host]:
    """Hosts matching ``target``: a host, a group, a comma-separated list, or ``all``.

    Raises:
        InvalidInput: nothing in the inventory matches (exit 2, names what exists).
    """
    path = path or DEFAULT_INVENTORY
    if not path.is_file():
        raise InvalidInput(f"inventory {path} does not exist", field="inventory")
    return [_wrap(h) for h in shared.load_inventory(path).select(target)]
