"""Danger-zone guards for the deploys: decided from facts, before any operation runs.

pyinfra runs deploy code (and reads facts) for every host before it executes anything. The
entry points call :func:`check` first: it works out which danger zones this host's run would
touch by comparing facts with the desired data, and for each one requires a person's
approval (``--data approvals=<A>[,<B>]``, signed with ``gept coordinate approve``) for that
zone, that plan hash and this host (``<inventory_id>/<host>``), verified against the
inventory's ``approvers`` and spent in the controller's ledger. A refusal prints the zone,
plan hash and changes as JSON on stderr and ends the process with exit 3 while nothing has
been executed on any host.

Plan hashes: :func:`gept.guards.plans.change_hash` of the zone and the changes the facts
say would happen (settings from/to, migrations, intervals, crons, model pins).

Plan mode is what pyinfra itself will do, read from pyinfra's own parsed options (its
click context: ``--dry``, or ``--json`` without ``--yes``), never from ``sys.argv`` or an
environment variable of ours: ``--exclude --dry`` is an ``--exclude`` value, ``-vy`` is
``--yes``. In plan mode zones are reported (``gept-zone: {...}`` lines on stderr with their
plan hashes) and **nothing is approved**: no zone's gated operation is planned, no token is
consumed, and a tripwire on pyinfra's State refuses (exit 3) the moment any operation would
start executing, so a wrong plan-mode decision can never turn into an unapproved apply.

Example:
    $ pyinfra inventory/lab.py deploys/site.py --dry      # zones reported, nothing runs
    $ pyinfra -y inventory/lab.py deploys/site.py         # zones need approvals (exit 3)
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from pyinfra import host, inventory, state
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.state import BaseStateCallback

from deploys.facts.gept import (
    ActiveModels,
    CollectorIntervals,
    CronFile,
    MigrationLedger,
    PostgresClusters,
    PostgresConfFragment,
)

EXIT_NEEDS_COORDINATION = 3
INFERENCE_CRON = "/etc/cron.d/gept-inference"


def postgres_conf_path(data: Any) -> str:
    """The conf.d fragment the deploy owns."""
    return f"/etc/postgresql/{data.postgres_version}/main/conf.d/gept.conf"


def intervals_path(data: Any) -> str:
    """Where the collectors project records the intervals it runs with."""
    return f"{data.collectors_dir}/intervals.json"


def plan_only() -> bool:
    """True when this pyinfra process will not execute operations.

    Decided as ``pyinfra_cli.cli._main`` decides to stop before ``run_ops``: ``--dry``, or a
    ``--json`` run without ``--yes``. The options are pyinfra's own: this process's command
    line parsed by pyinfra's click command (so ``--exclude --dry`` is an ``--exclude``
    value, ``-vy`` is ``--yes``, ``PYINFRA_YES`` counts), and ``--yes`` is cross-checked with
    the live ``State`` (``check_for_changes`` is ``not yes``). Deploy files run in pyinfra's
    greenlets, where click's context of the main greenlet is not visible, hence the parse.
    Outside the pyinfra CLI (the API) there is no plan mode: every zone needs its approval.

    Example:
        >>> plan_only()            # not inside the pyinfra CLI
        False
    """
    import pyinfra

    if not getattr(pyinfra, "is_cli", False):
        return False
    import click
    from pyinfra_cli.cli import cli

    try:
        ctx = cli.make_context("pyinfra", list(sys.argv[1:]), resilient_parsing=True)
    except click.ClickException:
        return False  # pyinfra parsed this command line, so this cannot happen; be safe
    params = ctx.params
    yes = params.get("yes") is True or not state.check_for_changes
    if params.get("dry") is True:
        return True
    return params.get("json_output") is True and not yes


class PlanTripwire(BaseStateCallback):
    """A pyinfra State callback: plan mode withheld every approval, so nothing may execute.

    Registered when the guard reports zones in plan mode. In a real plan pyinfra never
    starts an operation and this never fires; if plan mode was decided wrongly, the first
    operation is stopped before it runs on any host (exit 3).
    """

    def __init__(self) -> None:
        self.zones: list[dict[str, Any]] = []

    def operation_start(self, *_args: Any) -> None:  # type: ignore[override]
        body = {"error": "needs-coordination", "zones": self.zones,
                "reason": "plan mode approves nothing, but pyinfra started executing"}
        sys.stderr.write("gept-guard: refused: planned without approvals, now executing\n")
        sys.stderr.write(json.dumps(body, default=str) + "\n")
        sys.stderr.flush()
        os._exit(EXIT_NEEDS_COORDINATION)

    operation_host_start = operation_start  # type: ignore[assignment]


def arm_plan_tripwire(pyinfra_state: Any, report: dict[str, Any]) -> PlanTripwire:
    """Make ``pyinfra_state`` refuse (exit 3) to execute any operation of this run."""
    wire = next((h for h in pyinfra_state.callback_handlers if isinstance(h, PlanTripwire)),
                None)
    if wire is None:
        wire = PlanTripwire()
        pyinfra_state.add_callback_handler(wire)
    wire.zones.append(report)
    return wire


# ------------------------------------------------------------------------ zone detection

def restart_postgres_changes(current: dict[str, str] | None, desired: dict[str, str],
                             restart_keys: list[str], clusters: list[dict[str, Any]],
                             version: int) -> list[dict[str, Any]]:
    """Changes that need a PostgreSQL restart: restart-only settings, a major upgrade."""
    changes: list[dict[str, Any]] = []
    if current is not None:
        for key in sorted(set(restart_keys)):
            if current.get(key) != desired.get(key):
                changes.append({"setting": key, "from": current.get(key),
                                "to": desired.get(key)})
    other = sorted({c["version"] for c in clusters} - {version})
    if other and not any(c["version"] == version for c in clusters):
        changes.append({"upgrade": {"from": other[-1], "to": version}})
    return changes


def predictions_schema_changes(ledger: dict[int, str]) -> list[dict[str, Any]]:
    """Pending migrations marked ``-- gept:zone predictions-schema`` on a live schema."""
    if not ledger:
        return []  # a fresh database: creating the schema is not changing it
    from gept.db.migrate import load_migrations

    return [{"migration": m.label, "checksum": m.checksum}
            for m in load_migrations()
            if m.version not in ledger and "predictions-schema" in m.zones]


def deployed_intervals(fact: dict[str, Any]) -> dict[str, Any] | None:
    """The intervals the collectors run with, from the ``CollectorIntervals`` fact.

    The running containers' environment wins (that is what runs), then the rendered compose
    file (what ``up`` would start), then ``intervals.json``; ``None`` when nothing says.
    """
    for source in ("running", "compose", "record"):
        value = fact.get(source)
        if isinstance(value, dict) and value:
            return value
    return None


def interval_changes(deployed: dict[str, Any] | None, desired: dict[str, int],
                     project_deployed: bool = False) -> list[dict[str, Any]]:
    """Collectors whose running interval differs from the desired one.

    A host with no collectors project (a first deploy) has nothing to change. A host where
    the project exists but no interval can be read (records deleted, containers gone) is a
    change of every interval from unknown: the zone must not go blind when a file does.

    Example:
        >>> interval_changes({"5m": 300}, {"5m": 600})
        [{'collector': '5m', 'from': 300, 'to': 600}]
        >>> interval_changes(None, {"5m": 300}, project_deployed=True)
        [{'collector': '5m', 'from': 'unknown', 'to': 300}]
    """
    if not isinstance(deployed, dict) or not deployed:
        if not project_deployed:
            return []
        return [{"collector": name, "from": "unknown", "to": desired[name]}
                for name in sorted(desired)]
    return [{"collector": name, "from": deployed.get(name), "to": desired.get(name)}
            for name in sorted(set(deployed) | set(desired))
            if name in deployed and deployed.get(name) != desired.get(name)]


def model_registry_changes(active: dict[str, int],
                           pins: dict[str, int]) -> list[dict[str, Any]]:
    """Model pins in the inventory that differ from the ACTIVE model of their scope."""
    return [{"scope": scope, "from": active.get(scope), "to": int(model_id)}
            for scope, model_id in sorted(pins.items()) if active.get(scope) != int(model_id)]


def active_models(h: Any) -> dict[str, int]:
    """ACTIVE model per scope, read on Hydra through its tunnel (models live on Hydra)."""
    data = h.data
    result: dict[str, int] = h.get_fact(
        ActiveModels, database=data.db_name, port=data.tunnel_local_port, user=data.db_user,
        password_file=f"{data.config_dir}/db_password")
    return result


def peer(name: str) -> Any | None:
    """Another host of this run (connected), or ``None`` when it is not part of it."""
    try:
        other = inventory.get_host(name)
    except (KeyError, PyinfraError):
        return None
    return other if other is not None and other in state.active_hosts else None


def stop_inference_changes(cron_now: list[str] | None, enabled: bool, tunnel_enabled: bool,
                           fallback_ready: bool) -> list[dict[str, Any]]:
    """Hydra's inference being stopped (cron removed or tunnel removed) with no fallback."""
    if fallback_ready or not cron_now:
        return []
    changes: list[dict[str, Any]] = []
    if not enabled:
        changes.append({"cron": INFERENCE_CRON, "from": "present", "to": "absent"})
    if not tunnel_enabled:
        changes.append({"service": "gept-db-tunnel", "from": "running", "to": "absent"})
    return changes


def detect(current_host: Any = None) -> dict[str, list[dict[str, Any]]]:
    """Zone -> changes this host's run would make (empty dict: no zone touched)."""
    h = host if current_host is None else current_host
    data = h.data
    zones: dict[str, list[dict[str, Any]]] = {}
    if "ampere" in h.groups or "db_standby" in h.groups:
        # Every database host: a standby's restart breaks the reads served from it and
        # its replication (a switchover target must be streaming).
        desired = {k: str(v) for k, v in data.postgres_settings.items()}
        changes = restart_postgres_changes(
            h.get_fact(PostgresConfFragment, path=postgres_conf_path(data)), desired,
            list(data.postgres_restart_settings), h.get_fact(PostgresClusters),
            int(data.postgres_version))
        if changes:
            zones["restart-postgres"] = changes
    if "ampere" in h.groups:
        changes = predictions_schema_changes(h.get_fact(MigrationLedger, database=data.db_name))
        if changes:
            zones["predictions-schema"] = changes
        running = h.get_fact(CollectorIntervals, directory=data.collectors_dir)
        changes = interval_changes(deployed_intervals(running), dict(data.collector_intervals),
                                   project_deployed=bool(running.get("deployed")))
        if changes:
            zones["collector-intervals"] = changes
    if "hydra" in h.groups:
        pins = dict(data.get("model_pins") or {})
        if pins:
            changes = model_registry_changes(active_models(h), pins)
            if changes:
                zones["model-registry"] = changes
        enabled = bool(data.get("inference_enabled", True))
        tunnel = bool(data.get("tunnel_enabled", True))
        if not (enabled and tunnel):
            ampere = peer("ampere")
            ready = False
            if ampere is not None:
                ready = bool(ampere.data.get("inference_enabled", True)) and bool(
                    ampere.get_fact(CronFile, path=INFERENCE_CRON))
            changes = stop_inference_changes(h.get_fact(CronFile, path=INFERENCE_CRON),
                                             enabled, tunnel, ready)
            if changes:
                zones["stop-hydra-inference"] = changes
    return zones


# --------------------------------------------------------------------------- approvals

def approvals_given(data: Any) -> list[str]:
    """People's approvals passed as ``--data approvals=<A>[,<B>...]`` (from
    ``gept coordinate approve``; an approval's text contains no comma)."""
    raw = data.get("approvals") or ""
    return [t.strip() for t in str(raw).split(",") if t.strip()]


def deploy_plan_hash(zone: str, changes: list[dict[str, Any]]) -> str:
    """The plan hash an approval for this deploy must be bound to (the hosts it names are in
    the approval itself, as ``<inventory_id>/<host>``).

    A model pin is promoted on Hydra by ``gept models promote N --approval``, which checks
    the approval again there: its hash is that command's own, so one approval serves both
    (one pin change per converge).
    """
    from gept.guards.plans import change_hash

    if zone == "model-registry" and len(changes) == 1:
        from gept.registry.lifecycle import promote_plan_hash

        return promote_plan_hash(int(changes[0]["to"]))
    return change_hash(zone, changes)


def identity(h: Any) -> str:
    """``<inventory_id>/<host>``: how approvals name this host."""
    return f"{h.data.get('inventory_id', 'unnamed')}/{h.name}"


def _refuse(error: Any, host_name: str, changes: list[dict[str, Any]]) -> None:
    body = error.to_dict() if hasattr(error, "to_dict") else {"error": str(error)}
    body.update({"host": host_name, "changes": changes})
    sys.stderr.write(f"gept-guard: refused on {host_name}: {error}\n")
    sys.stderr.write(json.dumps(body, default=str) + "\n")
    sys.stderr.flush()
    sys.stdout.flush()
    # Nothing has run on any host yet (pyinfra is still planning): stop every host now.
    os._exit(EXIT_NEEDS_COORDINATION)


def check(current_host: Any = None) -> dict[str, str]:
    """Refuse (exit 3) unless every danger zone this run touches has a person's approval.

    Returns:
        Zone -> the approval that opened it (the host's ``gept db migrate`` checks the
        predictions-schema one again). Plan mode approves nothing: it reports the zones.
    """
    h = host if current_host is None else current_host
    zones = detect(h)
    if not zones:
        return {}
    if plan_only():
        # Plan mode approves nothing: the zones are reported with the plan hashes a person
        # would approve, and the run is fenced so that it cannot execute unapproved.
        for zone, changes in zones.items():
            report = {"host": h.name, "zone": zone,
                      "plan_hash": deploy_plan_hash(zone, changes), "hosts": [identity(h)],
                      "changes": changes}
            sys.stderr.write("gept-zone: " + json.dumps(report, default=str) + "\n")
            arm_plan_tripwire(state, report)
        return {}
    from gept.core.errors import GeptError
    from gept.guards import coordination
    from gept.guards.ledger import default_ledger
    from gept.guards.signers import Signers

    given = approvals_given(h.data)
    approved: dict[str, str] = {}
    for zone, changes in zones.items():
        text = coordination.pick(zone, given)
        try:
            coordination.require(zone, deploy_plan_hash(zone, changes), text,
                                 hosts=[identity(h)],
                                 signers=Signers.from_mapping(dict(h.data.get("approvers") or {})),
                                 ledger=default_ledger(), action=f"deploy {h.name}")
        except GeptError as exc:
            _refuse(exc, h.name, changes)
        approved[zone] = text or ""
    return approved
