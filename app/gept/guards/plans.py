"""The plan hash: sha256 of a plan's canonical JSON, what an approval is bound to.

Example:
    >>> plan_hash({"b": 1, "a": 2}) == plan_hash({"a": 2, "b": 1})
    True
    >>> is_plan_hash(plan_hash({}))
    True
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_HASH_RE = re.compile(r"[0-9a-f]{64}")


def canonical(obj: Any) -> bytes:
    """The bytes a plan hash is computed over (sorted keys, no whitespace)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def plan_hash(obj: Any) -> str:
    """A stable hash of a plan."""
    return hashlib.sha256(canonical(obj)).hexdigest()


def change_hash(zone: str, changes: list[dict[str, Any]]) -> str:
    """The plan hash of a deploy's changes in one zone (hosts are in the approval itself).

    The deploy guard (controller) and ``gept db migrate`` (host) compute the same hash for
    the same pending migrations, so one approval is checked on both sides.
    """
    return plan_hash({"action": "deploy", "zone": zone, "changes": changes})


def is_plan_hash(text: str) -> bool:
    """True for 64 lowercase hex characters."""
    return bool(_HASH_RE.fullmatch(text or ""))
