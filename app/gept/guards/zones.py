"""The danger zones: the actions the operators never take without a person's coordination.

Listed once here; the runbook model, the deploy guard, the migrations, the registry and the
host gate all read :data:`ZONES`.

Example:
    >>> check_zone("restart-postgres")
    'restart-postgres'
    >>> len(ZONES)
    7
"""

from __future__ import annotations

from typing import Literal, get_args

from gept.core.errors import InvalidInput

Zone = Literal[
    "restart-postgres",       # breaks every engine connection
    "predictions-schema",     # the engine and both inference roles read it
    "stop-hydra-inference",   # predictions go stale unless the fallback runs
    "collector-intervals",    # gaps in five years of history cannot be re-collected
    "model-registry",         # which model is ACTIVE decides every recommendation
    "restore-postgres",       # replaces the live database with the repository's copy
    "promote-standby",        # moves the primary role: two writable primaries lose data
]
ZONES: tuple[str, ...] = get_args(Zone)

# What the host gate (gept.gate) can do, and the zone each action is in. The zones without
# an action (predictions-schema, collector-intervals) change only through a person's deploy.
GateAction = Literal["restart-postgres", "stop-hydra-inference", "promote-model",
                     "rollback-model", "restore-postgres", "fence-postgres", "promote-standby",
                     "demote-primary"]
# The arguments a gate action may take (gept.gate.actions validates each by its pattern).
GateArg = Literal["model-id", "scope", "target", "peer"]
# Each action's zone, keyed by the literal (mypy holds keys and zones to the two Literals;
# a unit test holds the keys to every GateAction, and the gate serves exactly these).
GATE_ZONES: dict[GateAction, Zone] = {
    "restart-postgres": "restart-postgres",
    "stop-hydra-inference": "stop-hydra-inference",
    "promote-model": "model-registry",
    "rollback-model": "model-registry",
    "restore-postgres": "restore-postgres",
    # Failover (promote-standby) and switchover: fence the old primary, promote a standby;
    # a switchover's clean shutdown of the primary is a restart of PostgreSQL.
    "fence-postgres": "promote-standby",
    "promote-standby": "promote-standby",
    "demote-primary": "restart-postgres",
}
GATE_PROGRAM = "/usr/local/sbin/gept-gate"
AGENT_ACCOUNT = "gept-agent"  # the agent's account, on the controller and on the hosts


def check_zone(zone: str) -> str:
    """Return ``zone`` when it is a danger zone.

    Raises:
        InvalidInput: an unknown zone (the message lists the known ones).
    """
    if zone not in ZONES:
        raise InvalidInput(f"unknown danger zone {zone!r}; known: {', '.join(ZONES)}",
                           field="zone", zone=zone, known=list(ZONES))
    return zone
