"""A person with an SSH key, for tests and benchmarks that need a real approval.

The key is made with ``ssh-keygen`` in a directory the test owns (never the agent's), and
approvals are signed exactly as ``gept coordinate approve`` signs them.

Example:
    >>> alice = Person.create(Path("/tmp/t"), "alice")  # doctest: +SKIP
    >>> text = alice.approve("restart-postgres", h, ["lab/ampere"])  # doctest: +SKIP
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from gept.guards import approval
from gept.guards.signers import Signers


@dataclass(frozen=True)
class Person:
    """A name and a key pair."""

    name: str
    key: Path

    @classmethod
    def create(cls, directory: Path, name: str) -> Person:
        """Make the key pair (ed25519, no passphrase) under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        key = directory / f"{name}_ed25519"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                            str(key)], check=True, timeout=30)
        return cls(name, key)

    @property
    def public(self) -> str:
        """The public key line."""
        return self.key.with_name(self.key.name + ".pub").read_text().strip()

    def signers(self, *others: Person) -> Signers:
        """Allowed signers naming this person (and ``others``)."""
        return Signers.from_mapping({p.name: p.public for p in (self, *others)})

    def approve(self, zone: str, plan_hash: str, hosts: list[str], ttl: int = 900,
                reason: str = "test", now: int | None = None) -> str:
        """Sign an approval."""
        return approval.sign(zone, plan_hash, hosts, reason, ttl, self.key, now=now)
