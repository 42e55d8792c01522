"""`gept drift`: what would the deploys change right now.

Runs the deploys in plan mode (``pyinfra --dry --json``: facts are read, nothing is
executed) and reports every host and operation that would change, plus the danger zones the
change would touch. Exit 1 when anything would change, 0 when the hosts match the code.

Example:
    $ gept drift --inventory inventory/lab.py --json
    {"changed": false, "hosts": {"ampere": [], "hydra": []}, "zones": []}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from gept import convergence
from gept.core.controller import INVENTORY_HELP, inventory_path
from gept.core.errors import Failed, InvalidInput
from gept.core.output import emit

DEFAULT_DEPLOY = convergence.SITE
ZONE_PREFIX = "gept-zone: "


@dataclass
class DriftReport:
    """Operations that would change, by host; zones the changes would touch."""

    hosts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    zones: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when at least one operation would certainly change a host."""
        return any(op["certain"] for ops in self.hosts.values() for op in ops)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"changed": self.changed, "hosts": self.hosts, "zones": self.zones}


def parse_plan(plan: list[dict[str, Any]], hosts: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Host -> operations that would change, from pyinfra's ``--json`` plan.

    ``certain`` is False for operations that run only if an earlier one changes
    (pyinfra's "conditional change"); they are listed only when a certain change exists on
    that host, since otherwise they will not run.

    Example:
        >>> parse_plan([{"name": "Install x", "hosts_with_change": ["a"],
        ...              "hosts_with_conditional_change": []}], ["a", "b"])
        {'a': [{'operation': 'Install x', 'certain': True}], 'b': []}
    """
    out: dict[str, list[dict[str, Any]]] = {h: [] for h in hosts}
    for op in plan:
        for name in op.get("hosts_with_change") or []:
            out.setdefault(name, []).append({"operation": op.get("name"), "certain": True})
        for name in op.get("hosts_with_conditional_change") or []:
            out.setdefault(name, []).append({"operation": op.get("name"), "certain": False})
    for name, ops in out.items():
        if not any(o["certain"] for o in ops):
            out[name] = []
    return out


def parse_zones(stderr: str) -> list[dict[str, Any]]:
    """The ``gept-zone:`` lines the deploys' guard prints in plan mode."""
    zones = []
    for line in stderr.splitlines():
        if line.startswith(ZONE_PREFIX):
            try:
                zones.append(json.loads(line[len(ZONE_PREFIX):]))
            except ValueError:
                continue
    return zones


def plan(inventory: Path, deploys: list[str], timeout: float = 600.0,
         extra_args: list[str] | None = None) -> DriftReport:
    """Run the deploys in plan mode against ``inventory`` and parse the result.

    Raises:
        InvalidInput: the inventory or a deploy file does not exist.
        Failed: pyinfra failed or timed out (its output is in the message).
    """
    if not inventory.exists():
        raise InvalidInput(f"inventory {inventory} does not exist", field="inventory")
    for deploy in deploys:
        if not (convergence.REPO / deploy).exists():
            raise InvalidInput(f"deploy file {deploy} does not exist", field="deploy")
    run = convergence.plan(inventory, deploys, timeout=timeout, extra_args=extra_args)
    if run.returncode == convergence.TIMED_OUT:
        raise Failed(f"pyinfra plan timed out after {timeout:.0f} s", inventory=str(inventory))
    doc = run.doc
    if not doc or run.returncode != 0:
        raise Failed(f"pyinfra plan failed (exit {run.returncode}): "
                     f"{(run.stderr or run.stdout)[-3000:]}", exit_status=run.returncode)
    hosts = sorted({h for op in doc.get("plan") or []
                    for key in ("hosts_with_change", "hosts_with_conditional_change")
                    for h in op.get(key) or []} | _inventory_hosts(inventory))
    return DriftReport(hosts=parse_plan(doc.get("plan") or [], hosts),
                       zones=parse_zones(run.stderr))


def _inventory_hosts(inventory: Path) -> set[str]:
    try:
        from gept.inventory import load_inventory

        return {h.name for h in load_inventory(inventory).hosts}
    except Exception:  # the host list is a nicety; the plan is the truth
        return set()


def drift(
    inventory: Path | None = typer.Option(None, "--inventory", "-i", help=INVENTORY_HELP),
    deploy: list[str] = typer.Option([DEFAULT_DEPLOY], "--deploy",
                                     help="Deploy file(s), relative to the repository."),
    limit: str | None = typer.Option(None, help="Only these hosts/groups (pyinfra --limit)."),
    timeout: float = typer.Option(600.0, help="Give up after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Report every host and operation the deploys would change; exit 1 if any would.

    Example:
        $ gept drift --inventory inventory/lab.py
        $ gept drift --inventory inventory/production.py --json
    """
    extra = ["--limit", limit] if limit else []
    report = plan(inventory_path(inventory), list(deploy), timeout=timeout, extra_args=extra)

    def human() -> str:
        lines = []
        for host, ops in sorted(report.hosts.items()):
            if not ops:
                lines.append(f"{host}: in sync")
                continue
            lines.append(f"{host}: {sum(o['certain'] for o in ops)} operation(s) would change")
            lines.extend(f"  {'~' if not o['certain'] else '*'} {o['operation']}" for o in ops)
        for zone in report.zones:
            lines.append(f"danger zone {zone['zone']} on {zone['host']} "
                         f"(plan hash {zone['plan_hash']}): needs a coordination token")
        return "\n".join(lines)

    emit(report.to_dict(), as_json, human=human())
    if report.changed:
        raise typer.Exit(1)
