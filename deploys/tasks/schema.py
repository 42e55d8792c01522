"""The database schema: ``gept db migrate`` on Ampere when the release ships migrations the
ledger does not have. A migration marked ``predictions-schema`` on a live schema runs only
with the person's approval the deploy's guard accepted; the host then checks the same
migration against its own allowed signers (``gept db migrate --approval``)."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from deploys.facts.gept import MigrationLedger, TableGrants


def pending_migrations(ledger: dict[int, str]) -> list[str]:
    """Labels of the release's migrations missing from the ledger."""
    from gept.db.migrate import load_migrations

    return [m.label for m in load_migrations() if m.version not in ledger]


@deploy("Migrate the database schema")
def migrate_schema(schema_zone_approval: str | None = None) -> None:
    """Apply pending migrations, then converge the per-job roles' grants on every table.

    Both run as root on Ampere, connected as the schema owner by peer authentication over
    the socket (the owner has no password). The grants step (``gept db grants``) runs after
    every migration and whenever a table's grants differ from what its name says
    (``gept.db.roles``), so tables added later (``engine_*``...) get theirs.
    """
    from gept.db.roles import grants_drift

    data = host.data
    ledger = host.get_fact(MigrationLedger, database=data.db_name)
    pending = pending_migrations(ledger)
    drift = grants_drift(host.get_fact(TableGrants, database=data.db_name))
    if not pending and not drift:
        return
    owner_dsn = (f"postgresql:///{data.db_name}?host=/var/run/postgresql"
                 f"&user={data.db_owner}")
    env = (f"set -a && . {data.config_dir}/gept.env && set +a && "
           f"export GEPT_DATABASE_URL={shlex.quote(owner_dsn)} && "
           "unset GEPT_DATABASE_PASSWORD_FILE")
    gept = f"{data.app_root}/current/venv/bin/gept"
    commands = [env]
    if pending:
        approval = ""
        if schema_zone_approval and ledger:
            # The same person's approval the guard verified on the controller; the host
            # verifies it again against its own allowed signers and spends it in root's
            # ledger.
            approval = f" --approval {shlex.quote(schema_zone_approval)}"
        commands.append(f"{gept} db migrate --json{approval}")
    commands.append(f"{gept} db grants --json")
    what = f"Apply migrations {', '.join(pending)}" if pending else "Converge table grants"
    server.shell(name=what + " (as the owner, then grants)" if pending else what,
                 commands=[" && ".join(commands)], _sudo=True,
                 # root: peer-mapped to the owner (pg_ident gept_owner), and the approval
                 # ledger is root's.
                 _use_sudo_login=False, _chdir="/")
