"""Ordered SQL migrations recorded in a ledger with the checksum of each applied file.

Rules:
- Files are ``migrations/NNNN_name.sql``, applied in order, each in its own transaction.
- The ledger ``schema_migrations`` keeps version, name, sha256 and who applied it when.
- A changed applied migration is an error (the database no longer matches the code).
- A file carrying ``-- gept:zone <zone>`` touches a danger zone: once the database holds a
  schema (the ledger is not empty), applying it needs a coordination token for that zone.
- A session advisory lock makes concurrent ``gept db migrate`` runs wait for each other.

Example:
    $ gept db migrate --json
    {"applied": ["0001_market_data", "0002_models_and_predictions"], "current": 2}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg

from gept.core.errors import IntegrityError, InvalidInput, NeedsCoordination
from gept.guards.approval import Approval
from gept.guards.plans import change_hash
from gept.guards.zones import ZONES

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ZONE = re.compile(r"^--\s*gept:zone\s+([a-z-]+)\s*$", re.MULTILINE)
_LOCK_KEY = 0x6765_7074_6D69  # "geptmi": serialises migrate runs across hosts

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_by  TEXT NOT NULL DEFAULT current_user
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str
    zones: tuple[str, ...]

    @property
    def checksum(self) -> str:
        """sha256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        """``NNNN_name`` as it appears in output."""
        return f"{self.version:04d}_{self.name}"


@dataclass
class MigrationStatus:
    """What is applied, what is pending."""

    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    current: int = 0
    latest: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"applied": self.applied, "pending": self.pending, "current": self.current,
                "latest": self.latest, "up_to_date": not self.pending}


def load_migrations() -> list[Migration]:
    """All migration files shipped in the package, in order.

    Raises:
        InvalidInput: on a badly named file or a duplicate version.
    """
    found: dict[int, Migration] = {}
    folder = resources.files("gept.db") / "migrations"
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise InvalidInput(f"migration file {entry.name!r} must be named NNNN_name.sql",
                               file=entry.name)
        version = int(match.group(1))
        if version in found:
            raise InvalidInput(f"two migrations share version {version:04d}", file=entry.name)
        sql = entry.read_text()
        zones = tuple(_ZONE.findall(sql))
        for zone in zones:
            if zone not in ZONES:
                raise InvalidInput(f"{entry.name}: unknown danger zone {zone!r}",
                                   file=entry.name, field="gept:zone")
        found[version] = Migration(version, match.group(2), sql, zones)
    return [found[v] for v in sorted(found)]


def _applied(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str]]:
    # Only the owner creates the ledger: even CREATE ... IF NOT EXISTS needs CREATE on the
    # schema, which the service roles reading the status (gept db status) do not have.
    row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if row is None or row[0] is None:
        conn.execute(LEDGER_DDL)
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def status(conn: psycopg.Connection[Any]) -> MigrationStatus:
    """Compare the ledger with the shipped files (checksums verified).

    Raises:
        IntegrityError: when an applied migration's file changed or disappeared.
    """
    migrations = load_migrations()
    applied = _applied(conn)
    conn.commit()
    by_version = {m.version: m for m in migrations}
    for version, (name, checksum) in applied.items():
        mig = by_version.get(version)
        if mig is None:
            raise IntegrityError(
                f"migration {version:04d}_{name} is applied but its file is missing",
                version=version)
        if mig.checksum != checksum:
            raise IntegrityError(
                f"migration {mig.label} was changed after it was applied "
                f"(ledger {checksum[:12]}, file {mig.checksum[:12]}); write a new migration "
                "instead of editing an applied one", version=version)
    result = MigrationStatus(latest=migrations[-1].version if migrations else 0)
    for mig in migrations:
        (result.applied if mig.version in applied else result.pending).append(mig.label)
    result.current = max(applied) if applied else 0
    return result


def zone_changes(migrations: list[Migration], zone: str) -> list[dict[str, Any]]:
    """The pending migrations in ``zone``, as the deploy guard lists them."""
    return [{"migration": m.label, "checksum": m.checksum} for m in migrations
            if zone in m.zones]


def pending_zone_hashes(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Zone -> plan hash of the pending migrations in it (a live schema only)."""
    before = status(conn)
    if not before.applied:
        return {}
    pending = [m for m in load_migrations() if m.label in before.pending]
    return {z: change_hash(z, zone_changes(pending, z)) for z in ZONES
            if zone_changes(pending, z)}


def migrate(conn: psycopg.Connection[Any], *, approved: Approval | None = None,
            dry_run: bool = False) -> MigrationStatus:
    """Apply every pending migration in order; return the status afterwards.

    A pending migration in a danger zone on a live schema needs ``approved``: a person's
    approval for that zone and for exactly these pending migrations (verified by the caller
    through :mod:`gept.guards.coordination`; :func:`pending_zone_hashes` says what to sign).

    Raises:
        IntegrityError: an applied migration changed.
        NeedsCoordination: a pending migration touches a danger zone of a live schema.
    """
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        before = status(conn)
        pending = [m for m in load_migrations() if m.label in before.pending]
        if before.applied:
            for zone in sorted({z for m in pending for z in m.zones}):
                digest = change_hash(zone, zone_changes(pending, zone))
                if approved is None or approved.zone != zone or approved.plan_hash != digest:
                    raise NeedsCoordination(
                        f"pending migrations touch danger zone {zone!r} of a live schema",
                        zone=zone, plan_hash=digest,
                        how=f"gept coordinate approve --zone {zone} --plan-hash {digest} "
                            "--host <inventory>/<host> --reason '...', then gept db migrate "
                            "--approval <approval>")
        if dry_run:
            return before
        for mig in pending:
            with conn.transaction():
                conn.execute(mig.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s,%s,%s)",
                    (mig.version, mig.name, mig.checksum))
        conn.commit()
        from gept.db import partitions

        partitions.ensure_default_partitions(conn)
        return status(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        conn.commit()
