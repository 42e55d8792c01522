"""The database schema: ``gept db migrate`` on Ampere when the release ships migrations the
ledger does not have. A migration marked ``predictions-schema`` on a live schema runs only
when the deploy's guard accepted a coordination token; the host then approves the exact
migration in its own coordination store for that one run."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from deploys.facts.gept import MigrationLedger


def pending_migrations(ledger: dict[int, str]) -> list[str]:
    """Labels of the release's migrations missing from the ledger."""
    from gept.db.migrate import load_migrations

    return [m.label for m in load_migrations() if m.version not in ledger]


@deploy("Migrate the database schema")
def migrate_schema(schema_zone_allowed: bool = False) -> None:
    """Apply pending migrations with the current release's ``gept db migrate``."""
    data = host.data
    ledger = host.get_fact(MigrationLedger, database=data.db_name)
    pending = pending_migrations(ledger)
    if not pending:
        return
    env = f"set -a && . {data.config_dir}/gept.env && set +a"
    gept = f"{data.app_root}/current/venv/bin/gept"
    commands = [env]
    if schema_zone_allowed and ledger:
        from gept.db.migrate import load_migrations
        from gept.guards import plan_hash

        for mig in load_migrations():
            if mig.label in pending and "predictions-schema" in mig.zones:
                digest = plan_hash({"action": "db-migrate", "migration": mig.label,
                                    "checksum": mig.checksum})
                py = (f"from gept import guards; print(guards.approve('predictions-schema', "
                      f"'{digest}', 'deploy coordinated by a controller token', 300, "
                      f"'gept-deploy'))")
                commands.append(f"export GEPT_COORDINATION_TOKEN=$({data.app_root}/current/venv"
                                f"/bin/python -c {shlex.quote(py)})")
    commands.append(f"{gept} db migrate --json")
    server.shell(name=f"Apply migrations {', '.join(pending)}",
                 commands=[" && ".join(commands)], _sudo=True, _sudo_user=data.gept_user,
                 _use_sudo_login=False, _chdir="/")
