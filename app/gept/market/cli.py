"""`gept market` commands."""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import typer

from gept.core.errors import InvalidInput
from gept.core.output import emit

app = typer.Typer(help="Market: the OSRS Wiki client and the simulator.", no_args_is_help=True)

log = logging.getLogger(__name__)


@app.command("simulate")
def simulate(
    port: int = typer.Option(8765, "--port", help="Port to listen on (0: any free port)."),
    items: int = typer.Option(4300, "--items",
                              help="Number of synthetic items (4,300: the real catalogue)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same market, byte for byte."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default)."),
    fault_rate: float = typer.Option(0.0, "--fault-rate",
                                     help="Fraction of market requests that get a fault."),
    fault_kinds: str = typer.Option("429,500,503,timeout,malformed", "--fault-kinds",
                                    help="Comma-separated faults drawn by --fault-rate."),
    now: str | None = typer.Option(None, "--now",
                                   help="Freeze the clock at this Unix time or ISO time."),
    as_json: bool = typer.Option(False, "--json", help="Print the listening line as JSON."),
) -> None:
    """Serve a synthetic OSRS Wiki prices API (same endpoints and shapes) until stopped.

    Endpoints: /latest /5m /1h /24h /volumes /mapping /timeseries /news.rss /players, also
    under /api/v1/osrs; the prices endpoints refuse (403) a missing or default User-Agent.
    Faults per request with ?fault=503 or the header X-Sim-Fault; scripted with
    POST /_sim/faults; the clock with POST /_sim/clock; one item's price with
    POST /_sim/moves (or ``gept market move``).

    Example:
        $ gept market simulate --port 8765 --seed 1
        $ GEPT_WIKI_BASE_URL=http://127.0.0.1:8765 gept collect 5m --once
    """
    from gept.market.simulator import FaultPlan, SimClock, SimulatorServer, SyntheticMarket
    from gept.market.simulator.server import parse_epoch

    if not 0 <= port <= 65535:
        raise InvalidInput("port must be within 0-65535", field="port")
    plan = FaultPlan(seed=seed)
    if fault_rate:
        plan.set_rate(fault_rate, [k for k in fault_kinds.split(",") if k.strip()])
    clock = SimClock()
    if now is not None:
        clock.set(parse_epoch(float(now) if now.replace(".", "", 1).isdigit() else now))
    server = SimulatorServer(SyntheticMarket(items=items, seed=seed), host=host, port=port,
                             faults=plan, clock=clock)

    def _stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it must not run in its thread.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    info = {"status": "listening", "url": server.url, "port": server.port, "items": items,
            "seed": seed, "fault_rate": fault_rate}
    emit(info, as_json, f"market simulator listening on {server.url} "
                        f"({items} items, seed {seed}, fault rate {fault_rate:g})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("market simulator stopped")


PROBE_ENDPOINTS = ("5m", "1h", "latest", "mapping", "timeseries", "news", "players")


@app.command("probe")
def probe(
    endpoint: str = typer.Argument("5m", help=f"One of: {', '.join(PROBE_ENDPOINTS)}."),
    timestamp: str | None = typer.Option(None, "--timestamp",
                                         help="Block start for 5m/1h (Unix s or ISO)."),
    item_id: int = typer.Option(2, "--id", help="Item for timeseries."),
    base_url: str | None = typer.Option(None, "--base-url",
                                        help="API base URL (default GEPT_WIKI_BASE_URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Call one endpoint once (with the client's retries) and summarise the answer.

    Proves the API (or the simulator) is reachable with our User-Agent, and shows how
    many rows it returned and for which block. Exit 1 when the upstream fails.

    Example:
        $ gept market probe 5m --json
        {"endpoint": "5m", "ok": true, "rows": 4012, "rejected": 0, "block": "...", ...}
    """
    from gept.core.config import get_settings
    from gept.market.client import WikiClient
    from gept.market.simulator.server import parse_epoch

    if endpoint not in PROBE_ENDPOINTS:
        raise InvalidInput(f"endpoint must be one of {', '.join(PROBE_ENDPOINTS)}",
                           field="endpoint")
    settings = get_settings()
    if base_url:
        settings = settings.model_copy(update={"wiki_base_url": base_url})
    ts = None
    if timestamp is not None:
        from gept.core.clock import from_epoch

        raw = float(timestamp) if timestamp.replace(".", "", 1).isdigit() else timestamp
        ts = from_epoch(parse_epoch(raw))
    started = time.monotonic()
    result: dict[str, Any] = {"endpoint": endpoint, "ok": True, "base_url":
                              settings.wiki_base_url}
    with WikiClient.from_settings(settings) as client:
        if endpoint in ("5m", "1h"):
            snap = client.five_minute(ts) if endpoint == "5m" else client.hourly(ts)
            result.update(rows=len(snap.rows), rejected=len(snap.rejected),
                          block=snap.timestamp.isoformat())
        elif endpoint in ("latest", "mapping", "timeseries"):
            rows: list[Any] = (client.latest() if endpoint == "latest" else
                               client.mapping() if endpoint == "mapping" else
                               client.timeseries(item_id, "5m"))
            result.update(rows=len(rows), rejected=len(client.last_rejected))
        elif endpoint == "news":
            news = client.news(settings.news_feed_url)
            newest = max((n.pub_date for n in news if n.pub_date), default=None)
            result.update(rows=len(news), newest=_iso(newest))
        else:
            result.update(players=client.player_count(settings.players_url))
        result.update(seconds=round(time.monotonic() - started, 3),
                      attempts=client.stats.attempts, circuit=client.breaker.state)
    human = ", ".join(f"{k}={v}" for k, v in result.items() if k != "ok")
    emit(result, as_json, f"ok: {human}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@app.command("move")
def move(
    item: int | None = typer.Argument(None, help="Item id whose price moves."),
    change: float | None = typer.Option(None, "--change",
                                        help="Relative move, e.g. -0.15 for a 15 % drop."),
    at: str | None = typer.Option(None, "--at", help="From (Unix s or ISO; default: the "
                                                     "simulator's now)."),
    until: str | None = typer.Option(None, "--until", help="Until (Unix s or ISO; default: "
                                                           "for good)."),
    clear: bool = typer.Option(False, "--clear", help="Remove every scripted move instead."),
    url: str = typer.Option("http://127.0.0.1:8765", "--url",
                            help="The simulator's base URL (its control API, /_sim/moves)."),
    as_json: bool = typer.Option(False, "--json", help="Print the simulator's moves as JSON."),
) -> None:
    """Move one item's price in a running simulator (a test and demo control, never the API).

    The move holds on every view the collectors read (/latest, /5m, /1h, /timeseries) from
    ``--at`` on; trades made earlier keep their prices. With no item and no ``--clear``,
    lists the moves that are set.

    Example:
        $ gept market move 4151 --change -0.15 --url http://127.0.0.1:8090
        moves: 4151 x0.85 from 2026-12-02T03:00:00+00:00
        $ gept market move --clear --url http://127.0.0.1:8090
    """
    import httpx

    from gept.core.errors import Failed
    from gept.market.simulator.server import parse_epoch

    if clear and item is not None:
        raise InvalidInput("give an item or --clear, not both", field="clear")
    if item is not None and change is None:
        raise InvalidInput("--change is required with an item", field="change")
    base = url.rstrip("/") + "/_sim/moves"
    try:
        if clear:
            resp = httpx.delete(base, timeout=10)
        elif item is None:
            resp = httpx.get(base, timeout=10)
        else:
            doc: dict[str, Any] = {"item": item, "change": change}
            for name, value in (("at", at), ("until", until)):
                if value is not None:
                    raw = float(value) if value.replace(".", "", 1).isdigit() else value
                    doc[name] = parse_epoch(raw)
            resp = httpx.post(base, json=doc, timeout=10)
    except httpx.HTTPError as exc:
        raise Failed(f"the simulator at {url} did not answer: {exc}") from exc
    body = resp.json() if resp.headers.get("content-type", "").startswith(
        "application/json") else {}
    if resp.status_code == 400:
        raise InvalidInput(f"the simulator refused the move: {body.get('error', resp.text)}",
                           field="move")
    if not resp.is_success:
        raise Failed(f"the simulator answered HTTP {resp.status_code}: {resp.text[:200]}")
    human = "; ".join(_move_line(m) for m in body.get("moves", [])) or "none"
    emit(body, as_json, f"moves: {human}")


def _move_line(move: dict[str, Any]) -> str:
    """``4151 x0.85 from <ISO> [until <ISO>]``."""
    line = f"{move['item']} x{1 + move['change']:.4g} from {_iso(_utc(move['since']))}"
    return line + (f" until {_iso(_utc(move['until']))}" if move["until"] is not None else "")


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
