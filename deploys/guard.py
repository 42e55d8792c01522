"""Danger-zone guards for the deploys: decided from facts, before any operation runs.

pyinfra runs deploy code (and reads facts) for every host before it executes anything. The
entry points call :func:`check` first: it works out which danger zones this host's run would
touch by comparing facts with the desired data, and for each one requires a coordination
token (``--data coordination_token=...`` — several separated by commas — or
``GEPT_COORDINATION_TOKEN``). A refusal prints the zone, plan hash and changes as JSON on
stderr and ends the process with exit 3 while nothing has been executed on any host.

Plan hashes: ``plan_hash({"action": "deploy", "host": <name>, "zone": <zone>,
"changes": [...]})``, the changes being what the facts say would happen (settings from/to,
migrations, intervals, crons, model pins).

In plan mode (``--dry``, or ``GEPT_DEPLOY_PLAN_ONLY=1`` as ``gept drift`` sets) zones are
reported (``gept-zone: {...}`` lines on stderr) and nothing is refused or consumed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

from pyinfra import host, inventory, state
from pyinfra.api.exceptions import PyinfraError

from deploys.facts.gept import (
    ActiveModels,
    CronFile,
    JsonFile,
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
    """True when this pyinfra process only plans (``--dry`` or ``gept drift``)."""
    if os.environ.get("GEPT_DEPLOY_PLAN_ONLY") == "1":
        return True
    argv = sys.argv[1:]
    yes = bool({"-y", "--yes"} & set(argv)) or os.environ.get("PYINFRA_YES", "") not in ("", "0")
    return "--dry" in argv or ("--json" in argv and not yes)


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


def interval_changes(deployed: dict[str, Any] | None,
                     desired: dict[str, int]) -> list[dict[str, Any]]:
    """Collectors whose running interval differs from the desired one."""
    if not isinstance(deployed, dict):
        return []
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
    if "ampere" in h.groups:
        desired = {k: str(v) for k, v in data.postgres_settings.items()}
        changes = restart_postgres_changes(
            h.get_fact(PostgresConfFragment, path=postgres_conf_path(data)), desired,
            list(data.postgres_restart_settings), h.get_fact(PostgresClusters),
            int(data.postgres_version))
        if changes:
            zones["restart-postgres"] = changes
        changes = predictions_schema_changes(h.get_fact(MigrationLedger, database=data.db_name))
        if changes:
            zones["predictions-schema"] = changes
        changes = interval_changes(h.get_fact(JsonFile, path=intervals_path(data)),
                                   dict(data.collector_intervals))
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


# ------------------------------------------------------------------------------ tokens

def _tokens(data: Any) -> list[str]:
    raw = data.get("coordination_token") or os.environ.get("GEPT_COORDINATION_TOKEN") or ""
    return [t.strip() for t in str(raw).split(",") if t.strip()]


def _claims(token: str) -> dict[str, Any]:
    """The unverified payload, only to pick which token is meant for which zone."""
    try:
        body = token.split(".")[1]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        decoded: dict[str, Any] = json.loads(raw)
        return decoded
    except (IndexError, ValueError):
        return {}


def deploy_plan_hash(host_name: str, zone: str, changes: list[dict[str, Any]]) -> str:
    """The plan hash a coordination token for this deploy must be bound to."""
    from gept.guards import plan_hash

    return plan_hash({"action": "deploy", "host": host_name, "zone": zone, "changes": changes})


def _refuse(error: Any, host_name: str, changes: list[dict[str, Any]]) -> None:
    body = error.to_dict() if hasattr(error, "to_dict") else {"error": str(error)}
    body.update({"host": host_name, "changes": changes})
    sys.stderr.write(f"gept-guard: refused on {host_name}: {error}\n")
    sys.stderr.write(json.dumps(body, default=str) + "\n")
    sys.stderr.flush()
    sys.stdout.flush()
    # Nothing has run on any host yet (pyinfra is still planning): stop every host now.
    os._exit(EXIT_NEEDS_COORDINATION)


def check(current_host: Any = None) -> set[str]:
    """Refuse (exit 3) unless every danger zone this run touches has a valid token.

    Returns:
        The zones this run may act in (all detected zones in plan mode).
    """
    h = host if current_host is None else current_host
    zones = detect(h)
    if not zones:
        return set()
    if plan_only():
        for zone, changes in zones.items():
            sys.stderr.write("gept-zone: " + json.dumps(
                {"host": h.name, "zone": zone,
                 "plan_hash": deploy_plan_hash(h.name, zone, changes),
                 "changes": changes}, default=str) + "\n")
        return set(zones)
    from gept import guards
    from gept.core.errors import GeptError

    tokens = _tokens(h.data)
    for zone, changes in zones.items():
        digest = deploy_plan_hash(h.name, zone, changes)
        chosen = next((t for t in tokens if _claims(t).get("zone") == zone
                       and _claims(t).get("plan_hash") == digest),
                      next((t for t in tokens if _claims(t).get("zone") == zone),
                           tokens[0] if tokens else None))
        try:
            guards.require(zone, digest, chosen or "", action=f"deploy {h.name}")
        except GeptError as exc:
            _refuse(exc, h.name, changes)
    return set(zones)
