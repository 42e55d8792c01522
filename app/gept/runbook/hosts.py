"""Hosts for the runner, from the one pyinfra inventory (through ``gept.inventory``).

``gept.inventory`` is the shared adapter (also used by the checks). Until it is importable,
a small reader of pyinfra inventory files stands in: module-level lists are groups, each
entry a host name or ``(name, data)``; the usual ``ssh_*`` data keys are honoured.

Example:
    >>> hosts = select_hosts(Path("inventory/lab.py"), "ampere")  # doctest: +SKIP
    >>> hosts[0].name
    'ampere'
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gept.core.errors import InvalidInput

DEFAULT_INVENTORY = Path("inventory/production.py")
HOST_AUDIT_LOG = "/var/log/gept/runbook-audit.jsonl"
HOST_LOCK_DIR = "/var/lock/gept-runbook"


@dataclass(frozen=True)
class Host:
    """One target host: its inventory name, how to reach it, and its groups."""

    name: str
    hostname: str
    port: int = 22
    user: str | None = None
    key_filename: str | None = None
    known_hosts: str | None = None
    strict: bool = True
    groups: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

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

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``fabric.Connection`` (paramiko's under ``connect_kwargs``)."""
        ck: dict[str, Any] = {}
        if self.key_filename:
            ck["key_filename"] = self.key_filename
            ck["look_for_keys"] = False
            ck["allow_agent"] = False
        return {"host": self.hostname, "port": self.port, "user": self.user,
                "connect_kwargs": ck, "connect_timeout": 10}


def _from_shared(path: Path) -> list[Host] | None:
    """Hosts through ``gept.inventory`` when it exists (the lab helper's adapter)."""
    try:
        from gept import inventory as shared  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    inv: Any = shared.load_inventory(path)
    raw = inv.hosts if hasattr(inv, "hosts") else inv
    out = []
    for h in (raw.values() if isinstance(raw, dict) else raw):
        out.append(_coerce(h))
    return out


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def _coerce(h: Any) -> Host:
    data = dict(_get(h, "data", default={}) or {})
    name = str(_get(h, "name"))
    port = _get(h, "port", "ssh_port", default=data.get("ssh_port", 22))
    return Host(
        name=name,
        hostname=str(_get(h, "hostname", "ssh_hostname", "address",
                          default=data.get("ssh_hostname", name))),
        port=int(port or 22),
        user=_get(h, "user", "ssh_user", default=data.get("ssh_user")),
        key_filename=_str_or_none(_get(h, "key", "key_filename", "ssh_key",
                                       default=data.get("ssh_key"))),
        known_hosts=_str_or_none(_get(h, "known_hosts", "ssh_known_hosts_file",
                                      default=data.get("ssh_known_hosts_file"))),
        strict=str(data.get("ssh_strict_host_key_checking", "yes")).lower() != "no",
        groups=tuple(_get(h, "groups", default=()) or ()),
        data=data,
    )


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(Path(str(value)).expanduser())


def _read_pyinfra_file(path: Path) -> list[Host]:
    """Read a pyinfra inventory file: every public list/tuple at module level is a group."""
    try:
        namespace = runpy.run_path(str(path))
    except (OSError, SyntaxError) as exc:
        raise InvalidInput(f"cannot read inventory {path}: {exc}", field="inventory") from exc
    by_name: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    for group, value in namespace.items():
        if group.startswith("_") or not isinstance(value, list | tuple):
            continue
        for entry in value:
            if isinstance(entry, str):
                name, data = entry, {}
            elif (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
                  and isinstance(entry[1], dict)):
                name, data = entry[0], dict(entry[1])
            else:
                continue
            by_name.setdefault(name, {}).update(data)
            groups.setdefault(name, []).append(group)
    hosts = []
    for name, data in by_name.items():
        display = str(data.get("gept_name") or data.get("gept_role") or name)
        hosts.append(_coerce({"name": display, "hostname": data.get("ssh_hostname", name),
                              "data": data, "groups": tuple(groups[name])}))
    return hosts


def load_hosts(path: Path | None = None) -> list[Host]:
    """Every host of an inventory file (default ``inventory/production.py``).

    Raises:
        InvalidInput: the file does not exist or cannot be read.
    """
    path = path or DEFAULT_INVENTORY
    if not path.is_file():
        raise InvalidInput(f"inventory {path} does not exist", field="inventory")
    shared = _from_shared(path)
    return shared if shared is not None else _read_pyinfra_file(path)


def select_hosts(path: Path | None, target: str) -> list[Host]:
    """Hosts matching ``target``: a host name or a group name, in inventory order.

    Raises:
        InvalidInput: nothing in the inventory matches (exit 2, names what exists).
    """
    hosts = load_hosts(path)
    chosen = [h for h in hosts if target in (h.name, h.hostname) or target in h.groups]
    if not chosen:
        known = sorted({h.name for h in hosts} | {g for h in hosts for g in h.groups})
        raise InvalidInput(f"no host or group {target!r} in the inventory; known: {known}",
                           field="target")
    return chosen
