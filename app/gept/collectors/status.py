"""The collectors' status page: HTML for people, JSON for agents, metrics for Prometheus.

Routes (stdlib ``http.server``; no JavaScript, the page refreshes itself every 30 s):

* ``/`` and ``/status``: a table with one row per collector — state, last success, freshness
  against its interval, last run, rows — red when stale (no success for 2x the interval);
* ``/status.json``: the same data;
* ``/metrics``: the contract metrics of every collector, derived from ``collector_runs``;
* ``/healthz``: 200 when PostgreSQL answers, 503 otherwise.

Example:
    $ gept collect status-page --port 8080
    $ curl -s http://127.0.0.1:8080/status.json | jq '.collectors[] | {collector, state}'
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from gept.collectors import gaps, runs
from gept.collectors.metrics import render_ledger
from gept.core.clock import utcnow
from gept.db.connect import connect

log = logging.getLogger(__name__)
REFRESH_SECONDS = 30


def snapshot(conn: psycopg.Connection[Any], now: datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready dict."""
    now = now or utcnow()
    states = runs.states(conn, now)
    open_gaps = gaps.listing(conn, statuses=gaps.OPEN, limit=50)
    unrecoverable = gaps.listing(conn, statuses=("UNRECOVERABLE",), limit=50)
    conn.rollback()
    stale = [s.collector for s in states if s.stale]
    return {
        "generated_at": now.isoformat(),
        "ok": not stale,
        "stale": stale,
        "collectors": [s.to_dict() for s in states],
        "gaps": {"open": [g.to_dict() for g in open_gaps],
                 "unrecoverable": [g.to_dict() for g in unrecoverable]},
    }


def human_age(seconds: float | None) -> str:
    """``"never"``, ``"42 s ago"``, ``"7 min ago"``, ``"3.5 h ago"``, ``"2.0 d ago"``.

    Example:
        >>> human_age(420)
        '7 min ago'
    """
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


def human_interval(seconds: int) -> str:
    """``"every 5 min"``, ``"every 1 h"``.

    Example:
        >>> human_interval(300), human_interval(86400)
        ('every 5 min', 'every 24 h')
    """
    if seconds < 120:
        return f"every {seconds} s"
    if seconds < 7200 and seconds % 3600:
        return f"every {seconds // 60} min"
    return f"every {seconds // 3600} h"


_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .3rem}
.banner{padding:.6rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}
.banner.ok{background:#dcf5e3;color:#10562b}.banner.bad{background:#fde0e0;color:#8a1212}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.45rem .7rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
tr.ok td.state{color:#10562b}tr.failing td.state{color:#9a5b00}
tr.stale,tr.never{background:#fdecec}tr.stale td.state,tr.never td.state{color:#b00020}
td.state{font-weight:700;text-transform:uppercase}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.nowrap{white-space:nowrap}td.name{font-weight:600}
.muted{color:#6a737d;font-size:.85rem}.err{color:#8a1212;font-size:.85rem;min-width:14rem}
"""


def short_time(iso: str | None) -> str:
    """``2026-01-05 12:00:00 UTC`` from an ISO time (``never`` for None).

    Example:
        >>> short_time("2026-01-05T12:00:00.123+00:00")
        '2026-01-05 12:00:00 UTC'
    """
    if not iso:
        return "never"
    when = datetime.fromisoformat(iso)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell(text: object, cls: str | None = None) -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{html.escape(str(text))}</td>"


def render_html(data: dict[str, Any]) -> str:
    """The status page."""
    rows = []
    for c in data["collectors"]:
        last = c["last_run"] or {}
        freshness = human_age(c["age_seconds"])
        verdict = ("stale: no success for over " + human_age(c["stale_after_seconds"])
                   .removesuffix(" ago") if c["stale"] else "fresh")
        rows.append(
            f'<tr class="{c["state"]}" data-collector="{html.escape(c["collector"])}" '
            f'data-state="{c["state"]}">'
            + _cell(c["collector"], "name") + _cell(c["state"], "state")
            + f'<td class="freshness">{html.escape(freshness)}'
            f'<div class="muted">{html.escape(verdict)}</div></td>'
            + _cell(human_interval(c["interval_seconds"]), "nowrap")
            + _cell(short_time(c["last_success_at"]), "nowrap")
            + _cell(f'{last["status"]} at {short_time(last["started_at"])}' if last
                    else "never ran", "nowrap")
            + _cell(f'{c["last_success_rows"]:,}', "num")
            + _cell(f'{c["rows_24h"]:,}', "num")
            + _cell(f'{c["runs_24h"]} / {c["failures_24h"]}', "num")
            + (f'<td class="err">{html.escape(last["error"])}</td>' if last.get("error")
               else "<td></td>")
            + "</tr>")
    if data["ok"]:
        banner = '<div class="banner ok">All collectors fresh</div>'
    else:
        banner = ('<div class="banner bad">Stale: ' + html.escape(", ".join(data["stale"]))
                  + "</div>")
    gap_rows = "".join(
        "<tr>" + _cell(g["table"]) + _cell(short_time(g["gap_start"]))
        + _cell(short_time(g["gap_end"]))
        + _cell(g["status"]) + _cell(g["attempts"], "num") + _cell(g["error"] or "") + "</tr>"
        for g in data["gaps"]["open"] + data["gaps"]["unrecoverable"])
    gaps_html = (f"<h2>Gaps</h2><table><tr><th>Table</th><th>From</th><th>To (excl.)</th>"
                 f"<th>Status</th><th>Attempts</th><th>Error</th></tr>{gap_rows}</table>"
                 if gap_rows else '<p class="muted">No open gaps.</p>')
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        "<title>GePT collectors</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>GePT collectors</h1>"
        f'<div class="muted">Generated {short_time(data["generated_at"])} · stale = no '
        "successful run for twice the interval · "
        '<a href="/status.json">JSON</a> · <a href="/metrics">metrics</a></div>'
        f"{banner}"
        "<table><tr><th>Collector</th><th>State</th><th>Freshness</th><th>Interval</th>"
        "<th>Last success</th><th>Last run</th><th>Rows (last success)</th><th>Rows 24 h</th>"
        "<th>Runs / failures 24 h</th><th>Last error</th></tr>"
        + "".join(rows) + "</table>" + gaps_html + "</body></html>")


class StatusServer:
    """The status page, bound on construction (``port`` 0: any free port).

    Args:
        dsn: the database (None: the configured one).
        host: bind address (loopback unless told otherwise).
        port: TCP port.
        now: the clock (tests may freeze it).
    """

    def __init__(self, dsn: str | None = None, host: str = "127.0.0.1", port: int = 8080,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.dsn = dsn
        self.now = now
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.status = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def data(self) -> dict[str, Any]:
        """The page's data, from a fresh connection."""
        with connect(self.dsn) as conn:
            return snapshot(conn, self.now())

    def metrics(self) -> bytes:
        """The ledger-derived metrics."""
        def load() -> dict[str, runs.CollectorTotals]:
            with connect(self.dsn) as conn:
                return runs.totals(conn)
        return render_ledger(load)

    def start(self) -> StatusServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.2}, name="gept-status")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread."""
        try:
            self._httpd.serve_forever(poll_interval=0.5)
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server_version = "gept-status/1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        server: StatusServer = self.server.status  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path in ("/", "/status"):
                self._send(200, render_html(server.data()).encode(), "text/html; charset=utf-8")
            elif path == "/status.json":
                self._send(200, json.dumps(server.data()).encode(), "application/json")
            elif path == "/metrics":
                self._send(200, server.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/healthz":
                with connect(server.dsn) as conn:
                    conn.execute("SELECT 1")
                self._send(200, b'{"status": "ok", "database": "up"}', "application/json")
            else:
                self._send(404, b'{"error": "not found"}', "application/json")
        except Exception as exc:  # a page must answer, not drop the socket
            log.warning("status page %s failed: %s", path, exc)
            body = {"status": "error", "database": "down" if _is_db(exc) else "unknown",
                    "error": str(exc).strip()[:500]}
            if path in ("/", "/status"):
                page = ("<!doctype html><html><head><title>GePT collectors</title></head><body>"
                        '<h1>GePT collectors</h1><div class="banner bad" style="color:#b00020">'
                        f"Status unavailable: {html.escape(body['error'])}</div></body></html>")
                self._send(503, page.encode(), "text/html; charset=utf-8")
            else:
                self._send(503, json.dumps(body).encode(), "application/json")


def _is_db(exc: BaseException) -> bool:
    from gept.core.errors import DatabaseError

    return isinstance(exc, psycopg.Error | DatabaseError)
