"""The five danger zones and coordination tokens (used by deploys, runbooks and `gept models`).

Interface contract (owned by the runbooks work; this first version is a stub that refuses):

- ``ZONES``: the zone ids.
- ``plan_hash(obj) -> str``: sha256 of canonical JSON of a plan.
- ``require(zone, plan_hash, token, *, action) -> None``: raises ``NeedsCoordination`` unless
  ``token`` is valid for that zone and plan hash, unexpired and unused; consumes it and audits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gept.core.errors import InvalidInput, NeedsCoordination

ZONES: tuple[str, ...] = (
    "restart-postgres",
    "predictions-schema",
    "stop-hydra-inference",
    "collector-intervals",
    "model-registry",
)


def plan_hash(obj: Any) -> str:
    """A stable hash of a plan: sha256 of its canonical JSON.

    Example:
        >>> plan_hash({"b": 1, "a": 2}) == plan_hash({"a": 2, "b": 1})
        True
    """
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def require(zone: str, plan_hash: str, token: str | None, *, action: str) -> None:
    """Allow an action in a danger zone only with a valid coordination token."""
    if zone not in ZONES:
        raise InvalidInput(f"unknown danger zone {zone!r}", zone=zone, known=list(ZONES))
    raise NeedsCoordination(
        f"{action} touches danger zone {zone!r}; a coordination token is required",
        zone=zone, plan_hash=plan_hash,
        how=f"gept coordinate approve --zone {zone} --plan-hash {plan_hash} --reason '...' "
            "--ttl 15m, then pass the token",
    )
