"""`gept db migrate|status`."""

from __future__ import annotations

import typer

from gept.core.output import emit

app = typer.Typer(help="Database: migrations and status.", no_args_is_help=True)


@app.command("migrate")
def migrate_cmd(
    dsn: str | None = typer.Option(None, help="Connection string (default GEPT_DATABASE_URL)."),
    approval: str | None = typer.Option(None, "--approval",
                                        help="A person's approval for danger-zone migrations "
                                             "(verified against this host's allowed signers)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be applied."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Apply pending migrations in order, verifying checksums of applied ones.

    Example:
        $ GEPT_DATABASE_URL=postgresql://osrs_user@localhost/osrs_data gept db migrate
    """
    from gept.db.connect import connect
    from gept.db.migrate import migrate, pending_zone_hashes

    with connect(dsn, attempts=3) as conn:
        before_pending = None
        approved = None
        if approval:
            from gept.guards.approval import Refused, decode
            from gept.guards.coordination import Guard

            try:
                zone = decode(approval)[0].zone
            except Refused:
                zone = "predictions-schema"
            digest = pending_zone_hashes(conn).get(zone, "0" * 64)
            approved = Guard.on_this_host().require(zone, digest, approval,
                                                    action="gept db migrate")
        result = migrate(conn, approved=approved, dry_run=dry_run)
        before_pending = result.pending if dry_run else None
    data = result.to_dict()
    if dry_run:
        data["would_apply"] = before_pending
    emit(data, as_json, human=(
        f"would apply: {', '.join(before_pending or []) or 'nothing'}" if dry_run else
        f"schema at {result.current:04d} (latest {result.latest:04d}); "
        f"{len(result.applied)} applied, {len(result.pending)} pending"))


@app.command("status")
def status_cmd(
    dsn: str | None = typer.Option(None, help="Connection string (default GEPT_DATABASE_URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show applied and pending migrations; exit 1 when any are pending.

    Example:
        $ gept db status --json
    """
    from gept.db.connect import connect
    from gept.db.migrate import status

    with connect(dsn) as conn:
        result = status(conn)
    emit(result.to_dict(), as_json, human=(
        f"schema at {result.current:04d} (latest {result.latest:04d}); pending: "
        f"{', '.join(result.pending) or 'none'}"))
    if result.pending:
        raise typer.Exit(1)


@app.command("grants")
def grants_cmd(
    dsn: str | None = typer.Option(None, help="Connection string of the schema owner "
                                              "(default GEPT_DATABASE_URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Converge the per-job roles' grants on every table (run as the owner, after migrate).

    Which role may read or write which table is decided by the table's name
    (``gept.db.roles.FAMILIES``): ``engine_*`` for the engine, the market tables for the
    collectors, predictions for inference, the registry for training. Exit 1 when a role
    is missing (the deploy creates them as the ``postgres`` superuser first).

    Example:
        $ sudo gept db grants --json \\
            --dsn 'postgresql:///osrs_data?host=/var/run/postgresql&user=osrs_user'
    """
    from gept.core.errors import Failed
    from gept.db import roles
    from gept.db.connect import connect

    with connect(dsn, attempts=3) as conn:
        missing = roles.missing_roles(conn)
        if missing:
            raise Failed(f"roles missing: {', '.join(missing)} (create them as postgres "
                         "first: gept.db.roles.create_roles_sql)", missing=missing)
        report = roles.apply_grants(conn)
    emit(report.to_dict(), as_json, human=(
        f"grants converged on {report.tables} tables as {report.owner}"
        + (f"; unclassified (probe-readable only): {', '.join(report.unclassified)}"
           if report.unclassified else "")))
