"""pyinfra inventory files -> hosts, for the runbook runner (Fabric) and the checks (testinfra).

There is one list of hosts: the pyinfra inventory files (``inventory/production.py``,
``inventory/lab.py``). This adapter reads them the way pyinfra does, without a pyinfra
``State``:

* every public module-level list (or ``(hosts, data)`` tuple) is a group; a host is a name
  or a ``(name, data)`` tuple; every host also joins the group named after the file;
* ``group_data/<group>.py`` and ``group_data/all.py`` next to the inventory file give group
  data (their public module-level names, minus imported names, or ``__all__``);
* precedence, first match wins: override data, host data, group data (a later group wins
  over an earlier one), ``all`` data.

SSH host keys are always checked: the Fabric and testinfra connections made here refuse a
host whose key is not in the known_hosts file (the lab writes its own; production uses the
operator's, from ``ssh_known_hosts_file`` data, the SSH config or ``~/.ssh/known_hosts``).

Example:
    >>> inv = load_inventory("inventory/lab.py")              # doctest: +SKIP
    >>> [h.name for h in inv.select("lab")]                   # doctest: +SKIP
    ['ampere', 'hydra']
    >>> fabric_connection(inv.host("ampere")).run("hostname")   # doctest: +SKIP
"""

from __future__ import annotations

import ast
import os
import runpy
import types
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gept.core.errors import ConfigError, InvalidInput

CONNECT_TIMEOUT = 10  # seconds; an unreachable host must fail fast, not hang a runbook
DISABLED_CHECKING = frozenset({"no", "off", "false", "0", "accept-new"})
HOST_AUDIT_LOG = "/var/log/gept/runbook-audit.jsonl"   # the runner's trail on each host
HOST_LOCK_DIR = "/var/lock/gept-runbook"


@dataclass(frozen=True)
class Host:
    """One inventory host with its resolved data (override > host > groups > all).

    The one host object of the deploys' adapter, the runbook runner and the checks: its
    address, its SSH settings, and what the runner keeps on it (audit log, locks).

    Example:
        >>> h = Host("ampere", ("ampere", "lab"), {"ssh_port": 2221, "inventory_id": "lab"})
        >>> h.identity, h.matches("lab"), h.resolved()["port"]
        ('lab/ampere', True, 2221)
    """

    name: str
    groups: tuple[str, ...] = ()
    # Data may hold unhashable values; a host is the same host by name and groups.
    data: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def ssh_hostname(self) -> str:
        """Address to connect to; the inventory name when no ``ssh_hostname`` is set."""
        return str(self.data.get("ssh_hostname") or self.name)

    @property
    def ssh_port(self) -> int | None:
        """``ssh_port`` data, or None to let the SSH config / port 22 decide."""
        port = self.data.get("ssh_port")
        return int(port) if port not in (None, "") else None

    @property
    def ssh_user(self) -> str | None:
        """``ssh_user`` data, or None to let the SSH config / the local user decide."""
        user = self.data.get("ssh_user")
        return str(user) if user else None

    @property
    def ssh_key(self) -> str | None:
        """Path of the private key (``ssh_key`` data), ``~`` expanded."""
        key = self.data.get("ssh_key")
        return os.path.expanduser(str(key)) if key else None

    @property
    def ssh_config_file(self) -> str | None:
        """An SSH config for this host (``ssh_config_file``, or the lab's ``lab_ssh_config``)."""
        path = self.data.get("ssh_config_file") or self.data.get("lab_ssh_config")
        return os.path.expanduser(str(path)) if path else None

    @property
    def known_hosts_file(self) -> str:
        """known_hosts used to verify this host: ``ssh_known_hosts_file`` data or the
        operator's ``~/.ssh/known_hosts``.
        """
        path = self.data.get("ssh_known_hosts_file") or "~/.ssh/known_hosts"
        return os.path.expanduser(str(path))

    @property
    def env(self) -> str:
        """``env`` data ("lab", "production"); "production" when unset, to be safe."""
        return str(self.data.get("env") or "production")

    def to_dict(self) -> dict[str, Any]:
        """The host as JSON-ready data (for ``--json`` output)."""
        return {"name": self.name, "groups": list(self.groups), "ssh_hostname": self.ssh_hostname,
                "ssh_port": self.ssh_port, "ssh_user": self.ssh_user, "env": self.env}

    @property
    def is_root(self) -> bool:
        """Connected as root: the runner's sudo steps run directly."""
        return self.ssh_user == "root"

    @property
    def identity(self) -> str:
        """``<inventory>/<host>`` (e.g. ``lab/ampere``): what approvals name and what the
        host's gate knows itself as (``/etc/gept/host-identity``).
        """
        return f"{self.data.get('inventory_id', 'unnamed')}/{self.name}"

    @property
    def audit_log(self) -> str:
        """Where this host keeps the runbook audit log (data ``gept_runbook_audit_log``)."""
        return str(self.data.get("gept_runbook_audit_log", HOST_AUDIT_LOG))

    @property
    def lock_dir(self) -> str:
        """Where this host keeps runbook locks (data ``gept_runbook_lock_dir``)."""
        return str(self.data.get("gept_runbook_lock_dir", HOST_LOCK_DIR))

    def resolved(self) -> dict[str, Any]:
        """Where a runbook plan will really connect: part of the plan hash."""
        return {"name": self.name, "identity": self.identity, "address": self.ssh_hostname,
                "port": self.ssh_port or 22, "user": self.ssh_user,
                "groups": sorted(self.groups)}

    def matches(self, selector: str) -> bool:
        """True when ``selector`` names this host, its address or one of its groups."""
        return selector in (self.name, self.ssh_hostname) or selector in self.groups

    def connection(self) -> Any:
        """A ``fabric.Connection`` that refuses unknown host keys (`fabric_connection`)."""
        return fabric_connection(self)


@dataclass(frozen=True)
class Inventory:
    """The hosts and groups of one inventory file."""

    path: Path
    hosts: tuple[Host, ...]
    groups: Mapping[str, tuple[str, ...]]

    @property
    def names(self) -> list[str]:
        """Host names in inventory order."""
        return [h.name for h in self.hosts]

    def host(self, name: str) -> Host:
        """The host called ``name``.

        Raises:
            InvalidInput: naming the known hosts when there is no such host.
        """
        for host in self.hosts:
            if host.name == name:
                return host
        raise InvalidInput(f"unknown host {name!r} in {self.path.name}; "
                           f"known hosts: {', '.join(self.names)}",
                           field="host", known_hosts=self.names)

    def select(self, target: str | Iterable[str] | None = None) -> list[Host]:
        """Hosts matching ``target``: a host or group name, a comma-separated list of them,
        or None / "all" for every host. Inventory order, no duplicates.

        Raises:
            InvalidInput: (exit 2) naming the unknown target and the known hosts and groups.

        Example:
            >>> inv.select("ampere,hydra")                    # doctest: +SKIP
        """
        if target is None:
            return list(self.hosts)
        tokens = ([t.strip() for t in target.split(",")] if isinstance(target, str)
                  else [str(t).strip() for t in target])
        tokens = [t for t in tokens if t]
        if not tokens:
            raise InvalidInput("empty target: name a host or a group", field="target")
        wanted: set[str] = set()
        for part in tokens:
            if part == "all":
                wanted.update(self.names)
            elif part in self.names:
                wanted.add(part)
            elif part in self.groups:
                wanted.update(self.groups[part])
            else:
                raise InvalidInput(
                    f"unknown host or group {part!r} in {self.path.name}; known hosts: "
                    f"{', '.join(self.names)}; known groups: {', '.join(sorted(self.groups))}",
                    field="target", known_hosts=self.names, known_groups=sorted(self.groups))
        return [h for h in self.hosts if h.name in wanted]


# --- loading -----------------------------------------------------------------------------


def _is_group(key: str, value: Any) -> bool:
    """Pyinfra's rule: a public list, or a ``(hosts, data)`` tuple, of names/(name, data)."""
    if key.startswith("_"):
        return False
    if isinstance(value, tuple):
        if len(value) != 2 or not isinstance(value[0], list):
            return False
        value = value[0]
    if not isinstance(value, list):
        return False
    return all(isinstance(item, str | tuple) for item in value)


def _split_host(item: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
            and isinstance(item[1], dict)):
        return item[0], dict(item[1])
    raise ConfigError(f"{where}: a host must be a name or a (name, data) tuple, got {item!r}",
                      field=where)


def _exec_file(path: Path) -> dict[str, Any]:
    try:
        return runpy.run_path(str(path), run_name=f"gept_inventory_{path.stem}")
    except Exception as exc:  # an inventory file is arbitrary Python: report, don't crash
        raise ConfigError(f"cannot load {path}: {type(exc).__name__}: {exc}",
                          path=str(path)) from exc


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names if a.name != "*")
    return names


def load_group_data(directory: Path) -> dict[str, dict[str, Any]]:
    """``group_data/<group>.py`` files -> ``{group: data}``, with pyinfra's rules."""
    out: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.py")):
        attrs = _exec_file(path)
        keys = set(attrs["__all__"]) if "__all__" in attrs else set(attrs) - _imported_names(path)
        out[path.stem] = {
            k: v for k, v in attrs.items()
            if k in keys and not k.startswith("__") and not isinstance(v, types.ModuleType)
        }
    return out


def load_inventory(
    path: str | os.PathLike[str],
    group_data_dirs: Iterable[str | os.PathLike[str]] | None = None,
    override_data: Mapping[str, Any] | None = None,
) -> Inventory:
    """Read a pyinfra inventory file (and its ``group_data/``) into an `Inventory`.

    Args:
        path: the inventory file, e.g. ``inventory/lab.py``.
        group_data_dirs: extra group data directories (after ``<inventory dir>/group_data``).
        override_data: data that wins over everything (like pyinfra's ``--data``).

    Raises:
        ConfigError: (exit 2) when the file is missing, fails to run, or defines no hosts.

    Example:
        >>> inv = load_inventory("inventory/production.py")   # doctest: +SKIP
        >>> inv.host("ampere").groups                          # doctest: +SKIP
        ('ampere', 'production')
    """
    inv_path = Path(path)
    if not inv_path.is_file():
        raise ConfigError(f"inventory file {inv_path} does not exist", field="inventory")
    attrs = _exec_file(inv_path)

    groups_raw: dict[str, tuple[list[Any], dict[str, Any]]] = {}
    for key, value in attrs.items():
        if _is_group(key, value):
            hosts, data = value if isinstance(value, tuple) else (value, {})
            groups_raw[key] = (list(hosts), dict(data))

    all_hosts, all_data = groups_raw.pop("all", ([], {}))
    host_data: dict[str, dict[str, Any]] = {}
    host_groups: dict[str, list[str]] = {}
    order: list[str] = []

    def add(item: Any, group: str | None, where: str) -> None:
        name, data = _split_host(item, where)
        if name not in host_data:
            host_data[name], host_groups[name] = {}, []
            order.append(name)
        host_data[name].update(data)
        if group is not None and group not in host_groups[name]:
            host_groups[name].append(group)

    for group, (hosts, _data) in groups_raw.items():
        for item in hosts:
            add(item, group, f"{inv_path.name}: group {group}")
    for item in all_hosts:
        add(item, None, f"{inv_path.name}: all")
    if not order:
        raise ConfigError(f"inventory file {inv_path} defines no hosts", field="inventory")

    file_group = inv_path.stem
    if file_group not in groups_raw:
        groups_raw[file_group] = (list(order), {})
        for name in order:
            host_groups[name].append(file_group)

    dirs = [inv_path.parent / "group_data", *(Path(d) for d in group_data_dirs or ())]
    group_data: dict[str, dict[str, Any]] = {}
    for directory in dirs:
        for group, data in load_group_data(directory).items():
            group_data.setdefault(group, {}).update(data)
    all_layer = {**group_data.get("all", {}), **all_data}

    hosts_out: list[Host] = []
    for name in order:
        merged: dict[str, Any] = dict(all_layer)
        for group in host_groups[name]:
            merged.update(groups_raw.get(group, ([], {}))[1])
            merged.update(group_data.get(group, {}))
        merged.update(host_data[name])
        merged.update(override_data or {})
        hosts_out.append(Host(name=name, groups=tuple(host_groups[name]), data=merged))

    groups = {g: tuple(n for n in order if g in host_groups[n]) for g in groups_raw}
    return Inventory(path=inv_path, hosts=tuple(hosts_out), groups=groups)


def select_hosts(path: str | os.PathLike[str], target: str | None) -> list[Host]:
    """Hosts of the inventory file ``path`` matching ``target`` (see `Inventory.select`).

    Raises:
        ConfigError: the file does not exist or cannot be read.
        InvalidInput: nothing in the inventory matches (exit 2, names what exists).

    Example:
        >>> [h.name for h in select_hosts("inventory/lab.py", "ampere")]  # doctest: +SKIP
        ['ampere']
    """
    return load_inventory(path).select(target)


# --- connections -------------------------------------------------------------------------


def _check_strict(host: Host) -> None:
    value = str(host.data.get("ssh_strict_host_key_checking", "yes")).lower()
    if value in DISABLED_CHECKING and host.env != "lab":
        raise ConfigError(
            f"host {host.name}: ssh_strict_host_key_checking={value!r} is refused; the runner "
            "and the checks always verify host keys (add the key to known_hosts)",
            field="ssh_strict_host_key_checking")


def fabric_connect_kwargs(host: Host) -> dict[str, Any]:
    """Keyword arguments for ``fabric.Connection(**kwargs)``.

    Unset port/user are left out so the operator's SSH config decides, as with ``ssh``.
    Use `fabric_connection` to also enforce host-key checking.

    Example:
        >>> fabric_connect_kwargs(Host("ampere", (), {"ssh_port": 2221}))["port"]
        2221
    """
    _check_strict(host)
    kwargs: dict[str, Any] = {"host": host.ssh_hostname, "connect_timeout": CONNECT_TIMEOUT}
    if host.ssh_port is not None:
        kwargs["port"] = host.ssh_port
    if host.ssh_user is not None:
        kwargs["user"] = host.ssh_user
    connect: dict[str, Any] = {"banner_timeout": CONNECT_TIMEOUT,
                               "auth_timeout": CONNECT_TIMEOUT}
    if host.ssh_key:
        connect["key_filename"] = [host.ssh_key]
        connect["look_for_keys"] = bool(host.data.get("ssh_look_for_keys", False))
        connect["allow_agent"] = bool(host.data.get("ssh_allow_agent", False))
    kwargs["connect_kwargs"] = connect
    return kwargs


def fabric_connection(host: Host) -> Any:
    """A ``fabric.Connection`` that refuses unknown host keys (Fabric's default accepts them).

    Raises:
        ConfigError: when the known_hosts file does not exist.
    """
    from fabric import Connection
    from paramiko import RejectPolicy

    conn = Connection(**fabric_connect_kwargs(host))
    known = _known_hosts_for(host, conn.ssh_config)
    conn.client.get_host_keys().load(known)
    conn.client.set_missing_host_key_policy(RejectPolicy())
    return conn


def _known_hosts_for(host: Host, ssh_config: Mapping[str, Any] | None = None) -> str:
    """The explicit known_hosts data, else the SSH config's UserKnownHostsFile, else ~."""
    path = host.data.get("ssh_known_hosts_file")
    if not path and ssh_config and ssh_config.get("userknownhostsfile"):
        path = str(ssh_config["userknownhostsfile"]).split()[0]
    resolved = os.path.expanduser(str(path or "~/.ssh/known_hosts"))
    if not Path(resolved).is_file():
        raise ConfigError(f"host {host.name}: known_hosts file {resolved} does not exist "
                          "(host keys are always verified)", field="ssh_known_hosts_file")
    return resolved


def testinfra_url(host: Host, backend: str = "paramiko") -> str:  # noqa: PT028 - not a test
    """A testinfra host spec, e.g. ``paramiko://root@127.0.0.1:2221?ssh_identity_file=...``.

    Note: testinfra's own paramiko backend does not verify host keys; `testinfra_host`
    does. With ``backend="ssh"`` OpenSSH verifies them (StrictHostKeyChecking=yes).

    Example:
        >>> testinfra_url(Host("ampere", (), {"ssh_user": "root", "ssh_port": 2221}))
        'paramiko://root@ampere:2221?timeout=10'
    """
    _check_strict(host)
    netloc = host.ssh_hostname
    if host.ssh_user:
        netloc = f"{urllib.parse.quote(host.ssh_user)}@{netloc}"
    if host.ssh_port:
        netloc = f"{netloc}:{host.ssh_port}"
    query: dict[str, str] = {"timeout": str(CONNECT_TIMEOUT)}
    if host.ssh_key:
        query["ssh_identity_file"] = host.ssh_key
    if host.ssh_config_file:
        query["ssh_config"] = host.ssh_config_file
    if backend == "ssh":
        query["ssh_extra_args"] = (f"-o StrictHostKeyChecking=yes -o BatchMode=yes "
                                   f"-o UserKnownHostsFile={host.known_hosts_file}")
    return f"{backend}://{netloc}?{urllib.parse.urlencode(query)}"


def testinfra_host(host: Host) -> Any:
    """A ``testinfra.host.Host`` over paramiko that refuses unknown host keys.

    Example:
        >>> lab = load_inventory("inventory/lab.py")              # doctest: +SKIP
        >>> testinfra_host(lab.host("ampere")).service("ssh").is_running  # doctest: +SKIP
        True
    """
    import testinfra.host

    _check_strict(host)
    backend_cls = _strict_backend_class()
    return testinfra.host.Host(backend_cls(host, _known_hosts_for(host)))


def _strict_backend_class() -> Any:
    """Testinfra's paramiko backend with the connection made here, host keys verified.

    Defined lazily so that importing this module needs neither testinfra nor paramiko.
    """
    import functools

    import paramiko
    from testinfra.backend.paramiko import ParamikoBackend

    class StrictParamikoBackend(ParamikoBackend):  # type: ignore[misc]
        def __init__(self, host: Host, known_hosts: str) -> None:
            spec = f"{host.ssh_user}@{host.ssh_hostname}" if host.ssh_user else host.ssh_hostname
            if host.ssh_port:
                spec += f":{host.ssh_port}"
            super().__init__(spec, ssh_identity_file=host.ssh_key, timeout=CONNECT_TIMEOUT)
            self._gept_host = host
            self._gept_known_hosts = known_hosts

        @functools.cached_property
        def client(self) -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            client.get_host_keys().load(self._gept_known_hosts)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            kwargs = fabric_connect_kwargs(self._gept_host)
            client.connect(
                hostname=kwargs["host"], port=kwargs.get("port", 22),
                username=kwargs.get("user"), timeout=CONNECT_TIMEOUT,
                **kwargs["connect_kwargs"],
            )
            return client

    return StrictParamikoBackend


# pytest would collect these as tests when a test module imports them by name.
testinfra_url.__test__ = False  # type: ignore[attr-defined]
testinfra_host.__test__ = False  # type: ignore[attr-defined]
