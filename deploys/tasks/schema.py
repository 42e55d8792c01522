"""The database schema: ``gept db migrate`` on Ampere when the release ships migrations the
ledger does not have. A migration marked ``predictions-schema`` on a live schema runs only
with the person's approval the deploy's guard accepted; the host then checks the same
migration against its own allowed signers (``gept db migrate --approval``)."""

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
def migrate_schema(schema_zone_approval: str | None = None) -> None:
    """Apply pending migrations with the current release's ``gept db migrate``."""
    data = host.data
    ledger = host.get_fact(MigrationLedger, database=data.db_name)
    pending = pending_migrations(ledger)
    if not pending:
        return
    env = f"set -a && . {data.config_dir}/gept.env && set +a"
    gept = f"{data.app_root}/current/venv/bin/gept"
    commands = [env]
    approval = ""
    if schema_zone_approval and ledger:
        # The same person's approval the guard verified on the controller; the host verifies
        # it again against its own allowed signers and spends it in root's ledger.
        approval = f" --approval {shlex.quote(schema_zone_approval)}"
    commands.append(f"{gept} db migrate --json{approval}")
    server.shell(name=f"Apply migrations {', '.join(pending)}",
                 commands=[" && ".join(commands)], _sudo=True,
                 # root only to spend an approval in root's ledger; otherwise the gept user
                 _sudo_user=None if approval else data.gept_user,
                 _use_sudo_login=False, _chdir="/")
