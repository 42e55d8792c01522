"""Hosts for the checks come from the one inventory, through `gept.inventory`.

Run through ``gept check --inventory inventory/lab.py [--host ampere] [--json]``, or
directly: ``pytest checks/ --gept-inventory inventory/lab.py [--gept-hosts ampere]``
(``GEPT_CHECK_INVENTORY`` / ``GEPT_CHECK_HOSTS`` work too).

A test asks for ``ampere``, ``hydra`` or ``target`` (any host); it is parametrized once per
selected inventory host of that group, so ``--gept-hosts hydra`` runs Hydra's checks only.
Each item carries two user properties the report uses: ``gept_host`` and ``gept_check``
(the test's docstring, plus its other parameters).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from checklib import Target

from gept.core.errors import GeptError
from gept.inventory import Host, Inventory, load_inventory, testinfra_host

ROLE_FIXTURES = ("ampere", "hydra", "target")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gept", "GePT checks")
    group.addoption("--gept-inventory", default=os.environ.get("GEPT_CHECK_INVENTORY"),
                    help="pyinfra inventory file, e.g. inventory/lab.py")
    group.addoption("--gept-hosts", default=os.environ.get("GEPT_CHECK_HOSTS"),
                    help="host or group names, comma-separated (default: all)")


def _inventory(config: pytest.Config) -> Inventory:
    cached: Inventory | None = getattr(config, "_gept_inventory", None)
    if cached is not None:
        return cached
    path = config.getoption("--gept-inventory")
    if not path:
        raise pytest.UsageError("no inventory: pass --gept-inventory inventory/lab.py "
                                "(or use `gept check --inventory ...`)")
    try:
        inventory = load_inventory(path)
    except GeptError as exc:
        raise pytest.UsageError(exc.message) from exc
    config._gept_inventory = inventory  # type: ignore[attr-defined]
    return inventory


def _selected(config: pytest.Config) -> list[Host]:
    try:
        return _inventory(config).select(config.getoption("--gept-hosts") or None)
    except GeptError as exc:
        raise pytest.UsageError(exc.message) from exc


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for role in ROLE_FIXTURES:
        if role in metafunc.fixturenames:
            hosts = [h.name for h in _selected(metafunc.config)
                     if role == "target" or role in h.groups]
            metafunc.parametrize(role, hosts, indirect=True, ids=hosts, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Label each item with host and check; drop those no selected host applies to."""
    keep, drop = [], []
    for item in items:
        params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
        host = next((params[r] for r in ROLE_FIXTURES if isinstance(params.get(r), str)), None)
        if host is None:
            drop.append(item)
            continue
        func = getattr(item, "function", None)
        doc = (func.__doc__ or "").strip().splitlines() if func else []
        title = doc[0].rstrip(".") if doc else item.name
        extra = [str(v) for k, v in params.items() if k not in ROLE_FIXTURES]
        if extra:
            title += f" [{', '.join(extra)}]"
        item.user_properties.append(("gept_host", host))
        item.user_properties.append(("gept_check", title))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class _Connections:
    """One testinfra connection per host for the session; a failed connect is remembered
    so every check of an unreachable host fails at once with the same reason."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.targets: dict[str, Target] = {}
        self.errors: dict[str, str] = {}

    def get(self, name: str) -> Target:
        if name in self.errors:
            pytest.fail(self.errors[name], pytrace=False)
        if name not in self.targets:
            host = self.inventory.host(name)
            try:
                conn = testinfra_host(host)
                conn.run("true")  # connect now, so a bad host fails here, readably
            except Exception as exc:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                self.errors[name] = f"cannot reach {name} over SSH: {message}"
                pytest.fail(self.errors[name], pytrace=False)
            needs_sudo = bool(host.data.get("_sudo")) and host.ssh_user not in (None, "root")
            self.targets[name] = Target(name=name, groups=host.groups, data=host.data,
                                        host=conn, _sudo=needs_sudo)
        return self.targets[name]


@pytest.fixture(scope="session")
def _connections(request: pytest.FixtureRequest) -> _Connections:
    return _Connections(_inventory(request.config))


@pytest.fixture(scope="session")
def ampere(request: pytest.FixtureRequest, _connections: _Connections) -> Target:
    """An Ampere host (PostgreSQL, engine, collectors, monitoring, fallback inference)."""
    return _connections.get(request.param)


@pytest.fixture(scope="session")
def hydra(request: pytest.FixtureRequest, _connections: _Connections) -> Target:
    """A Hydra host (training, primary inference, tunnel to Ampere's PostgreSQL)."""
    return _connections.get(request.param)


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest, _connections: _Connections) -> Target:
    """Any selected host."""
    return _connections.get(request.param)
