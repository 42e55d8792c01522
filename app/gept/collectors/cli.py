"""`gept collect ...`: the collectors, backfill, gaps and the status page.

Example:
    $ gept collect 5m --once --json
    $ gept collect gaps --json
    $ gept collect backfill --since 2026-01-01T00:00Z --until 2026-01-01T06:00Z
    $ gept collect status-page --port 8080
"""

from __future__ import annotations

import contextlib
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from gept.core.config import COLLECTOR_INTERVALS
from gept.core.errors import InvalidInput
from gept.core.output import emit

app = typer.Typer(help="Collectors: fetch market data into PostgreSQL.", no_args_is_help=True)

_DESCRIPTIONS = {
    "5m": ("5-minute price blocks from /5m into price_data_5min", "$ gept collect 5m --once"),
    "latest": ("latest instant prices from /latest into prices_latest_1m (per minute)",
               "$ gept collect latest --max-runs 3"),
    "1h": ("1-hour price blocks from /1h into prices_1h", "$ gept collect 1h --once --json"),
    "items": ("item static data from /mapping into items (on start and daily)",
              "$ gept collect items --once"),
    "news": ("official OSRS news RSS into osrs_news", "$ gept collect news --once"),
    "players": ("players online into player_counts (aligned to 300 s)",
                "$ GEPT_METRICS_PORT=9104 gept collect players"),
}


def parse_time(value: str, field: str) -> datetime:
    """An ISO-8601 time (naive means UTC) or Unix seconds.

    Example:
        >>> parse_time("2026-01-01T00:05", "since").isoformat()
        '2026-01-01T00:05:00+00:00'

    Raises:
        InvalidInput: naming ``field``.
    """
    text = value.strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"--{field} must be an ISO time or Unix seconds, got {value!r}",
                           field=field) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _collector_command(name: str) -> None:
    summary, example = _DESCRIPTIONS[name]

    def command(
        once: bool = typer.Option(False, "--once", help="Run once and exit (exit 1 if failed)."),
        max_runs: int | None = typer.Option(None, min=1, help="Stop after N runs."),
        max_seconds: float | None = typer.Option(None, min=0, help="Stop after N seconds."),
        metrics_port: int | None = typer.Option(
            None, envvar="GEPT_METRICS_PORT",
            help="Prometheus port (default: this collector's 9100-9105 port; 0: off)."),
        metrics_host: str = typer.Option("127.0.0.1", envvar="GEPT_METRICS_HOST",
                                         help="Address the metrics listen on."),
        auto_backfill: bool = typer.Option(
            True, "--auto-backfill/--no-auto-backfill",
            help="Backfill a short gap (5m, 1h) as soon as it is recorded."),
        dsn: str | None = typer.Option(None, help="Connection string (default "
                                                  "GEPT_DATABASE_URL)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        from gept.collectors.metrics import PORTS, CollectorMetrics
        from gept.collectors.runner import CollectorRunner
        from gept.market.client import WikiClient

        with WikiClient.from_settings() as client:
            metrics = CollectorMetrics(name)
            runner = CollectorRunner(name, client, dsn=dsn, metrics=metrics,
                                     auto_backfill=auto_backfill)
            if once:
                record = runner.run_once()
                runner.close()
                data: dict[str, Any] = record.to_dict()
                if runner.pending:
                    data["unwritten_batches"] = len(runner.pending)
                emit(data, as_json, human=(
                    f"{name}: {record.status}; {record.rows_written} new rows, "
                    f"{record.rows_rejected} rejected"
                    + (f"; {record.error}" if record.error else "")))
                if record.status == "failed":
                    raise typer.Exit(1)
                return
            port = PORTS[name] if metrics_port is None else metrics_port
            metrics.serve(port, metrics_host)
            try:
                records = runner.loop(max_runs=max_runs, max_seconds=max_seconds)
            finally:
                metrics.close()
            failed = sum(r.status == "failed" for r in records)
            emit({"collector": name, "runs": len(records), "failed": failed,
                  "rows_written": sum(r.rows_written for r in records),
                  "unwritten_batches": len(runner.pending)}, as_json,
                 human=f"{name}: {len(records)} runs, {failed} failed")

    command.__doc__ = (
        f"Collect {summary}; every {COLLECTOR_INTERVALS[name]} s until SIGTERM.\n\n"
        "Each run is recorded in collector_runs; metrics are served on GEPT_METRICS_PORT.\n\n"
        f"Example:\n    {example}\n")
    command.__name__ = f"collect_{name}"
    app.command(name)(command)


for _name in COLLECTOR_INTERVALS:
    _collector_command(_name)


@app.command("backfill")
def backfill_cmd(
    since: str = typer.Option(..., help="First block (ISO time, naive = UTC, or Unix s)."),
    until: str = typer.Option(..., help="End of the range, exclusive."),
    table: str = typer.Option("5m", help="5m (price_data_5min) or 1h (prices_1h)."),
    pause: float = typer.Option(0.1, min=0, help="Seconds between API calls."),
    force: bool = typer.Option(False, "--force", help="Fetch blocks that are stored too."),
    dsn: str | None = typer.Option(None, help="Connection string (default GEPT_DATABASE_URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fetch missing blocks of a time range with the API's timestamp= parameter.

    Idempotent: stored blocks are skipped, a re-run writes nothing. Gaps recorded in
    data_quality inside the range become BACKFILLED (or UNRECOVERABLE after 3 failed
    attempts). Exit 1 when a block could not be recovered.

    Example:
        $ gept collect backfill --since 2026-01-01T00:00Z --until 2026-01-01T06:00Z --json
    """
    from gept.collectors.backfill import backfill
    from gept.market.client import WikiClient

    start, end = parse_time(since, "since"), parse_time(until, "until")
    with WikiClient.from_settings() as client:
        report = backfill(dsn, client, table, start, end, pause=pause, force=force)
    emit(report.to_dict(), as_json, human=(
        f"{report.table}: {report.blocks_written} blocks fetched ({report.rows_written} rows), "
        f"{report.blocks_present} already stored, {report.blocks_failed} failed, "
        f"{report.blocks_empty} empty; gaps {report.gaps or '-'}"))
    if not report.ok:
        raise typer.Exit(1)


@app.command("gaps")
def gaps_cmd(
    table: str | None = typer.Option(None, help="5m or 1h (default both)."),
    since: str | None = typer.Option(None, help="Scan from (default 7 days ago)."),
    until: str | None = typer.Option(None, help="Scan until (default now)."),
    repair: bool = typer.Option(False, "--repair", help="Backfill every open gap."),
    pause: float = typer.Option(0.1, min=0, help="Seconds between API calls when repairing."),
    dsn: str | None = typer.Option(None, help="Connection string (default GEPT_DATABASE_URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Detect missing blocks, record them in data_quality, list the unresolved gaps.

    With --repair, backfill each open gap. Exit 1 when unresolved gaps remain.

    Example:
        $ gept collect gaps --json
        $ gept collect gaps --repair --table 5m
    """
    from gept.collectors import gaps
    from gept.core.clock import utcnow
    from gept.db.connect import connect

    keys = [table] if table else list(gaps.TABLES)
    for key in keys:
        gaps.table_for(key)
    end = parse_time(until, "until") if until else utcnow()
    start = parse_time(since, "since") if since else end - timedelta(days=7)
    found: dict[str, int] = {}
    with connect(dsn) as conn:
        for key in keys:
            found[key] = len(gaps.scan(conn, key, start, end))
        conn.commit()
    repaired: list[dict[str, Any]] = []
    if repair:
        from gept.collectors.backfill import backfill
        from gept.market.client import WikiClient

        with connect(dsn) as conn:
            todo = [g for g in gaps.listing(conn, statuses=gaps.OPEN)
                    if any(gaps.TABLES[k][0] == g.table for k in keys)]
        with WikiClient.from_settings() as client:
            for gap in sorted(todo, key=lambda g: g.start):
                key = next(k for k, (t, _) in gaps.TABLES.items() if t == gap.table)
                report = backfill(dsn, client, key, gap.start, gap.end, pause=pause)
                repaired.append({"gap": gap.id, **report.to_dict()})
    with connect(dsn) as conn:
        listed = [g for g in gaps.listing(conn)
                  if any(gaps.TABLES[k][0] == g.table for k in keys)]
    steps = dict(gaps.TABLES.values())
    data = {"scanned": {"since": start.isoformat(), "until": end.isoformat()},
            "new_gaps": found, "repaired": repaired,
            "gaps": [g.to_dict(steps.get(g.table)) for g in listed]}
    lines = [f"{g.table} {g.start.isoformat()} .. {g.end.isoformat()} "
             f"({g.blocks(steps.get(g.table, 300))} blocks) {g.status}"
             + (f": {g.error}" if g.error else "") for g in listed]
    emit(data, as_json, human="\n".join(lines) or "no unresolved gaps")
    if listed:
        raise typer.Exit(1)


@app.command("status-page")
def status_page_cmd(
    port: int | None = typer.Option(None, envvar="GEPT_STATUS_PORT",
                                    help="Port (default GEPT_STATUS_PORT or 8080)."),
    host: str = typer.Option("127.0.0.1", envvar="GEPT_STATUS_HOST", help="Bind address."),
    dsn: str | None = typer.Option(None, help="Connection string (default GEPT_DATABASE_URL)."),
) -> None:
    """Serve the collectors' status page: /status (HTML), /status.json, /metrics, /healthz.

    Example:
        $ gept collect status-page --port 8080
        $ curl -s http://127.0.0.1:8080/status.json
    """
    from gept.collectors.status import StatusServer
    from gept.core.config import get_settings

    server = StatusServer(dsn, host, port if port is not None else get_settings().status_port)
    typer.echo(f"status page on {server.url}/status", err=True)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # leaves serve_forever; the port is released on the way out

    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
