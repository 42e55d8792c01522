"""HTTP plumbing of the simulator: one handler thread per connection, faults applied here.

The handler parses the request, counts it, asks the fault plan whether to misbehave, and
otherwise sends what ``SimulatorServer.answer`` computed. Control requests (``/_sim/*``)
go to ``SimulatorServer.control`` and are never faulted.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from gept.core.errors import GeptError, InvalidInput
from gept.market.simulator import render
from gept.market.simulator.agents import PRICE_PATHS, blocked
from gept.market.simulator.faults import Fault

if TYPE_CHECKING:
    from gept.market.simulator.server import SimulatorServer

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/osrs"
MARKET_PATHS = PRICE_PATHS | {"/news.rss", "/players"}
MAX_CONTROL_BODY = 64 * 1024
SLOW_CHUNKS = 20


class Response:
    """A status, a body and headers, ready to send."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


class SimHTTPServer(ThreadingHTTPServer):
    """The listening socket; ``sim`` is the simulator that answers."""

    daemon_threads = True  # a fault sleeping in a handler never blocks shutdown
    allow_reuse_address = True
    request_queue_size = 128  # bursts of concurrent collectors and load tests
    sim: SimulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request: at debug for clients that hung up, else as an error."""
        # Clients hanging up (timeouts, closed keep-alive connections) are normal here.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | OSError):
            log.debug("connection from %s ended: %s", client_address, exc)
            return
        log.exception("simulator failed to answer %s", client_address)


class Handler(BaseHTTPRequestHandler):
    """Serves one connection (keep-alive) of the simulator."""

    protocol_version = "HTTP/1.1"
    server_version = "gept-market-sim/1"
    timeout = 30  # idle keep-alive connections give their thread back
    # Headers and body go out in separate writes; with Nagle's algorithm and delayed ACKs
    # every response would stall ~40 ms.
    disable_nagle_algorithm = True
    server: SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Requests go to the logger, not to stderr."""
        log.debug("%s " + format, self.address_string(), *args)

    # -- plumbing -----------------------------------------------------------------------

    def _send(self, resp: Response, slow: float | None = None) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if slow is None:
            self.wfile.write(resp.body)
            return
        size = max(1, -(-len(resp.body) // SLOW_CHUNKS))
        for start in range(0, len(resp.body), size):
            if self.server.sim.stopping.wait(slow / SLOW_CHUNKS):
                self.close_connection = True
                return
            self.wfile.write(resp.body[start:start + size])
            self.wfile.flush()

    def _split(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX):] or "/"
        return path.rstrip("/") or "/", parse_qs(parts.query)

    def _guarded(self, method: str) -> None:
        try:
            self._dispatch(method)
        except GeptError as exc:
            if method == "POST":
                self.close_connection = True  # the body may be unread: do not reuse the socket
            self._send(Response(400, render.error_body(exc.message)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault working as intended)

    def do_GET(self) -> None:
        """Answer a GET."""
        self._guarded("GET")

    def do_HEAD(self) -> None:
        """Answer a HEAD."""
        self._guarded("HEAD")

    def do_POST(self) -> None:
        """Answer a POST (the /_sim control endpoints)."""
        self._guarded("POST")

    def do_DELETE(self) -> None:
        """Answer a DELETE (the /_sim control endpoints)."""
        self._guarded("DELETE")

    # -- requests -----------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        path, query = self._split()
        if path.startswith("/_sim/"):
            self._send(sim.control(method, path, self._json_body() if method == "POST" else {}))
            return
        if method not in ("GET", "HEAD"):
            self._send(Response(405, render.error_body("only GET"),
                                headers={"Allow": "GET, HEAD"}))
            return
        if path == "/":
            self._send(Response(200, json.dumps({"service": "gept market simulator",
                                                 "endpoints": sorted(MARKET_PATHS)}).encode()))
            return
        if path not in MARKET_PATHS:
            self._send(Response(404, render.error_body(f"no endpoint {path}")))
            return
        agent = self.headers.get("User-Agent", "")
        if path in PRICE_PATHS and blocked(agent):
            sim.count(path, agent)
            self._send(Response(403, render.error_body(
                "blocked User-Agent: name your tool and a contact, e.g. "
                "'gept-collector/0.1 (ops@example.org)'")))
            return
        if method == "HEAD":  # reachability probes: never counted, never faulted
            self._send(sim.answer(path, query, wrong_types=False))
            return
        sim.count(path, agent)
        fault = sim.faults.choose(path, self._requested_fault(query))
        if fault is None:
            self._send(sim.answer(path, query, wrong_types=False))
            return
        self._fault(fault, path, query)

    def _requested_fault(self, query: dict[str, list[str]]) -> Fault | None:
        kind = (query.get("fault") or [self.headers.get("X-Sim-Fault", "")])[0].strip()
        if not kind:
            return None
        retry_after = (query.get("retry_after") or [self.headers.get("X-Sim-Retry-After", "")])[0]
        delay = (query.get("delay") or [self.headers.get("X-Sim-Delay", "")])[0]
        try:
            seconds = float(delay) if delay else None
        except ValueError as exc:
            raise InvalidInput("delay must be a number of seconds", field="delay") from exc
        return Fault(kind, retry_after or None, seconds)

    def _fault(self, fault: Fault, path: str, query: dict[str, list[str]]) -> None:
        sim = self.server.sim
        status = fault.status
        if status is not None:
            headers: dict[str, str] = {}
            retry_after = fault.retry_after or ("1" if status == 429 else None)
            if retry_after is not None:
                if retry_after.startswith("date:"):
                    ahead = float(retry_after[5:] or 0)
                    retry_after = format_datetime(
                        datetime.fromtimestamp(time.time() + ahead, UTC), usegmt=True)
                headers["Retry-After"] = retry_after
            self._send(Response(status, render.error_body(f"simulated {status}"),
                                 headers=headers))
            return
        if fault.kind == "reset":
            self.close_connection = True
            self.connection.close()
            return
        if fault.kind == "timeout":
            if sim.stopping.wait(fault.seconds()):
                self.close_connection = True  # shutting down: hang up instead of answering
                return
            self._send(sim.answer(path, query, wrong_types=False))
            return
        resp = sim.answer(path, query, wrong_types=fault.kind == "wrong-types")
        if fault.kind == "malformed":
            resp.body = render.malformed(resp.body)
        elif fault.kind == "empty":
            resp.body = b""
        self._send(resp, slow=fault.seconds() if fault.kind == "slow" else None)

    def _json_body(self) -> dict[str, Any]:
        declared = self.headers.get("Content-Length") or "0"
        if not declared.isdigit():
            raise InvalidInput("Content-Length must be a number", field="body")
        length = int(declared)
        if length > MAX_CONTROL_BODY:
            raise InvalidInput("control body too large", field="body")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            doc = json.loads(raw or b"{}")
        except ValueError as exc:
            raise InvalidInput(f"control body is not JSON ({exc})", field="body") from exc
        if not isinstance(doc, dict):
            raise InvalidInput("control body must be a JSON object", field="body")
        return doc
