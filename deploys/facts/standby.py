"""Facts of the database hosts' replication roles (``deploys/tasks/standby.py``).

``command()`` runs on the host (read-only); ``process()`` is pure (tests feed it lines).
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase


class PostgresReplicationState(FactBase[dict[str, Any]]):
    """What a database host's cluster is: a standby, fenced, holding our database.

    ``{"signal": standby.signal exists, "masked": the unit is masked (fenced by
    promote-standby), "data": the data directory is initialized, "database": osrs_data
    exists (only seen while the cluster runs), "recovery": pg_is_in_recovery() or
    None when the cluster does not answer, "slots": replication slots}``.
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"signal": False, "masked": False, "database": False, "recovery": None,
                "data": False, "slots": []}

    def command(self, version: int, database: str) -> str:
        data_dir = f"/var/lib/postgresql/{int(version)}/main"
        unit = f"postgresql@{int(version)}-main.service"
        query = ("SELECT 'recovery=' || pg_is_in_recovery()::text UNION ALL "
                 "SELECT 'database=true' FROM pg_database WHERE datname = "
                 + "'" + database.replace("'", "") + "' UNION ALL "
                 "SELECT 'slot=' || slot_name FROM pg_replication_slots")
        return (f"test -f {data_dir}/standby.signal && echo signal=true; "
                f"test -f {data_dir}/PG_VERSION && echo data=true; "
                f"test \"$(systemctl is-enabled {unit} 2>/dev/null)\" = masked "
                "&& echo masked=true; "
                "command -v psql >/dev/null && cd / && runuser -u postgres -- psql -X -q -A -t "
                f"-c {shlex.quote(query)} 2>/dev/null; true")

    def process(self, output: list[str]) -> dict[str, Any]:
        state = self.default()
        state["slots"] = []
        for line in output:
            key, _, value = line.strip().partition("=")
            if key in ("signal", "masked", "database", "data"):
                state[key] = value == "true"
            elif key == "recovery":
                state["recovery"] = value == "true"
            elif key == "slot" and value:
                state["slots"].append(value)
        return state


class ResolvedAddresses(FactBase[dict[str, list[str]]]):
    """IPv4 addresses of host names as this host resolves them: ``{name: [address, ...]}``."""

    @staticmethod
    def default() -> dict[str, list[str]]:
        return {}

    def command(self, names: list[str]) -> str:
        return "; ".join(
            f"for a in $(getent ahostsv4 {shlex.quote(n)} | cut -d' ' -f1 | sort -u); do "
            f"echo {shlex.quote(n)} $a; done" for n in names) + "; true"

    def process(self, output: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for line in output:
            parts = line.split()
            if len(parts) == 2:
                out.setdefault(parts[0], [])
                if parts[1] not in out[parts[0]]:
                    out[parts[0]].append(parts[1])
        return out
