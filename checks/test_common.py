"""Every host: the firewall and the configuration directory."""

from __future__ import annotations

import re

import pytest
from checklib import DEFAULTS, Target

# Ports that must never be open to the world (the firewall allows SSH and the engine only).
CLOSED = {"postgres": DEFAULTS["postgres_port"], "prometheus": DEFAULTS["prometheus_port"],
          "alertmanager": DEFAULTS["alertmanager_port"], "grafana": DEFAULTS["grafana_port"],
          "status": DEFAULTS["status_port"],
          "collector-5m": DEFAULTS["collector_metrics_ports"]["5m"]}


def _ruleset(target: Target) -> str:
    result = target.run("nft list table inet gept_firewall")
    assert result.rc == 0, ("firewall table inet gept_firewall is not loaded: "
                            f"{result.stderr.strip()}")
    return str(result.stdout)


def _open_ports(ruleset: str) -> set[int]:
    """Ports the firewall accepts from anyone. A rule naming its sources (``ip saddr``:
    PostgreSQL, pgBackRest and the standby's exporter between named hosts) opens nothing
    to the world; ``checks/test_standby.py`` checks those peers."""
    ports: set[int] = set()
    for line in ruleset.splitlines():
        if "saddr" in line:
            continue
        for match in re.finditer(r"tcp dport (\{[^}]*\}|\S+) accept", line):
            ports.update(int(p) for p in re.findall(r"\d+", match.group(1)))
    return ports


def test_firewall_service_active(target: Target) -> None:
    """The firewall unit is active and enabled."""
    svc = target.host.service("gept-firewall")
    assert svc.is_running, "gept-firewall.service is not active"
    assert svc.is_enabled, "gept-firewall.service is not enabled"


def test_firewall_drops_by_default(target: Target) -> None:
    """The firewall's input policy is drop."""
    assert re.search(r"hook input priority \S+; policy drop;", _ruleset(target)), \
        "the input chain does not drop by default"


def test_firewall_opens_configured_ports(target: Target) -> None:
    """The firewall opens exactly the configured ports."""
    expected = {int(p) for p in target.get("firewall_open_ports")}
    actual = _open_ports(_ruleset(target))
    assert actual == expected, f"open ports {sorted(actual)}, configured {sorted(expected)}"


@pytest.mark.parametrize("service", sorted(CLOSED))
def test_firewall_keeps_closed(target: Target, service: str) -> None:
    """The firewall does not open the internal port."""
    port = CLOSED[service]
    assert port not in _open_ports(_ruleset(target)), f"{service} port {port} is open"


def test_config_dir_mode_0700(target: Target) -> None:
    """/etc/gept is 0700."""
    path = target.get("config_dir")
    d = target.file(path)
    assert d.is_directory, f"{path} is missing"
    assert d.mode == 0o700, f"{path} has mode {d.mode:04o}, not 0700"
