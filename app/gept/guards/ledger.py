"""Used nonces: an approval opens its zone once.

On a host the ledger is ``/var/lib/gept/approvals/used.jsonl`` (root-owned, 0700 directory):
the gate and ``gept models`` run as root there, the agent's account cannot write it. On a
controller a person's root account uses the same path; any other account has its own ledger
in its state directory, which only matters for that account's own runs (the hosts keep
theirs). Nothing (no flag, no environment variable) points it elsewhere.

Example:
    >>> ledger = Ledger(Path("/tmp/x/used.jsonl"))  # doctest: +SKIP
    >>> ledger.consume("nonce1", {"zone": "restart-postgres"})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from gept.guards.approval import Refused

HOST_LEDGER = Path("/var/lib/gept/approvals/used.jsonl")


def default_ledger() -> Ledger:
    """Root's ledger for root; an account's own ledger for any other account."""
    if os.geteuid() == 0:
        return Ledger(HOST_LEDGER)
    return Ledger(Path("~/.local/state/gept/approvals-used.jsonl").expanduser())


class Ledger:
    """An append-only JSON-lines file of used nonces, checked and marked under one lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def used(self, nonce: str) -> bool:
        """True when ``nonce`` was consumed (or revoked) before."""
        return any(row.get("nonce") == nonce for row in self.rows())

    def rows(self) -> list[dict[str, Any]]:
        """Every record, oldest first."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def consume(self, nonce: str, record: dict[str, Any]) -> None:
        """Mark ``nonce`` used, refusing when it was used already (two runs race safely).

        Raises:
            Refused: the nonce is in the ledger.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                for line in fh.read().splitlines():
                    with contextlib.suppress(ValueError):
                        if json.loads(line).get("nonce") == nonce:
                            raise Refused("approval already used (each approval works once)")
                fh.write(json.dumps({"nonce": nonce, "at": int(time.time()), **record},
                                    default=str) + "\n")
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
