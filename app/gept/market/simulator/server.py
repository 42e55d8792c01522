"""The simulator's HTTP server: the real API's endpoints over a ``SyntheticMarket``.

Standard library only (``ThreadingHTTPServer``): one thread per connection is plenty for
tests and the lab (dozens of concurrent requests), and it starts in-process in milliseconds.

Market endpoints (also under the real prefix ``/api/v1/osrs``): ``/latest[?id=]``,
``/5m[?timestamp=]``, ``/1h[?timestamp=]``, ``/24h``, ``/volumes``, ``/mapping``,
``/timeseries?timestep=&id=``, ``/news.rss`` and ``/players``. The prices endpoints answer
403 to a missing or a library's default User-Agent, as the real API does
(``gept.market.simulator.agents``). Control endpoints (never faulted, never refused):

* ``GET|POST|DELETE /_sim/faults``: read, add to (``{"next": ["503", {"kind": "timeout",
  "delay": 2}], "paths": ["/5m"]}``, ``{"next": 3, "kind": "429"}`` or
  ``{"rate": 0.1, "kinds": ["500", "malformed"], "paths": [...]}``), or clear the fault plan;
* ``GET|POST|DELETE /_sim/clock``: read, set (``{"now": <unix s or ISO>, "frozen": true}``
  or ``{"advance": <s>}``), or reset "now";
* ``GET|POST|DELETE /_sim/moves``: read, add (``{"item": 4151, "change": -0.15}`` drops
  that item's price 15 % from now on; ``"at"``/``"until"``, Unix seconds or ISO times on the
  simulator's clock, schedule it), or clear the scripted price moves
  (``gept.market.simulator.moves``);
* ``GET|DELETE /_sim/stats``: requests served per path and per User-Agent, or reset them.

Example:
    >>> with SimulatorServer(items=20, seed=1) as sim:   # port 0: any free port
    ...     sim.clock.set(1767225600)
    ...     sim.faults.push(["503"])
    ...     url = sim.url                                 # http://127.0.0.1:<port>
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from gept.core.errors import InvalidInput
from gept.market.simulator import render
from gept.market.simulator.catalogue import DEFAULT_ITEMS
from gept.market.simulator.faults import FaultPlan, SimClock
from gept.market.simulator.handler import MARKET_PATHS, Handler, Response, SimHTTPServer
from gept.market.simulator.market import SyntheticMarket
from gept.market.simulator.moves import PriceMove

TIMESTEP_SECONDS = {"5m": 300, "1h": 3600, "6h": 21600, "24h": 86400}


class SimulatorServer:
    """The simulator, bound on construction (so ``port`` is known), served by ``start()``.

    Args:
        market: the market to serve; or give ``items`` (default 4,300, the real catalogue's
            size) and ``seed`` to build one.
        host: bind address (loopback by default).
        port: 0 picks a free port; read it back from ``port`` / ``url``.
        faults: the fault plan (``self.faults``), e.g. with a rate preset from the CLI.
        clock: the clock (``self.clock``); the real time until a test sets it.

    Example:
        >>> sim = SimulatorServer(items=10, seed=3).start()
        >>> sim.port > 0
        True
        >>> sim.stop()
    """

    def __init__(self, market: SyntheticMarket | None = None, *, items: int = DEFAULT_ITEMS,
                 seed: int = 0, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultPlan | None = None, clock: SimClock | None = None) -> None:
        self.market = market or SyntheticMarket(items=items, seed=seed)
        self.seed = self.market.seed
        self.faults = faults or FaultPlan(seed=self.seed)
        self.clock = clock or SimClock()
        self.requests: dict[str, int] = {}
        self.user_agents: dict[str, int] = {}
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, int, bool, int], bytes] = OrderedDict()
        self._mapping: dict[bool, bytes] = {}
        self.stopping = threading.Event()
        self._httpd = SimHTTPServer((host, port), Handler)
        self._httpd.sim = self
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to give ``WikiClient`` (``http://host:port``)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        """Serve in a background daemon thread; returns self."""
        if self._thread is None:
            self._serving = True
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            kwargs={"poll_interval": 0.1},
                                            name=f"gept-sim-{self.port}", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` is called from another thread."""
        self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self.stopping.set()
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving, wake any handler held by a fault, and release the port.

        Must not be called from the thread running ``serve_forever`` (it waits for it).
        """
        self.stopping.set()
        if self._serving:
            self._serving = False
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what each endpoint answers -------------------------------------------------------

    def reset(self) -> None:
        """Back to a clean state between tests: no faults, no moves, the real clock, zero
        counts.
        """
        self.faults.clear()
        self.market.moves.clear()
        self.clock.reset()
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero the request counts (``requests``, ``user_agents``)."""
        with self._lock:
            self.requests.clear()
            self.user_agents.clear()

    def count(self, path: str, user_agent: str = "") -> None:
        """Count one request to ``path`` and the User-Agent that sent it."""
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            self.user_agents[user_agent] = self.user_agents.get(user_agent, 0) + 1

    def _cached(self, what: tuple[str, int, bool], make: Any) -> bytes:
        # A scripted move changes past blocks too: answers rendered before it are stale.
        key = (*what, self.market.moves.version)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        body: bytes = make()
        with self._lock:
            self._cache[key] = body
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return body

    def answer(self, path: str, query: dict[str, list[str]], wrong_types: bool) -> Response:
        """The normal (unfaulted) response to a market request."""
        now = self.clock.now()
        if path == "/mapping":
            if wrong_types not in self._mapping:
                self._mapping[wrong_types] = render.mapping_body(self.market.mapping(),
                                                                 wrong_types)
            return Response(200, self._mapping[wrong_types])
        if path in ("/5m", "/1h"):
            step = 300 if path == "/5m" else 3600
            latest_block = int(now) - int(now) % step - step
            ts = _int_param(query, "timestamp", latest_block)
            if ts % step:
                raise InvalidInput(f"timestamp must be a multiple of {step}", field="timestamp")
            if ts > latest_block:  # the block is not complete yet: the API has no data
                return Response(200, render.empty_block_body(ts))
            when = datetime.fromtimestamp(ts, UTC)
            return Response(200, self._cached(
                (path, ts, wrong_types),
                lambda: render.snapshot_body(self.market.block(when, step), wrong_types)))
        if path == "/24h":  # the day up to the latest complete 5-minute block
            start = int(now) - int(now) % 300 - 86400
            return Response(200, self._cached(
                (path, start, wrong_types),
                lambda: render.snapshot_body(self.market.window(start, 86400), wrong_types)))
        if path == "/volumes":
            volumes = self.market.volumes(datetime.fromtimestamp(int(now), UTC))
            # Computed a little after a block closed: the real timestamp is not aligned.
            return Response(200, render.volumes_body(volumes, int(now) - int(now) % 300 - 233))
        if path == "/latest":
            latest = self.market.latest(datetime.fromtimestamp(int(now), UTC))
            if "id" in query:
                wanted = _int_param(query, "id", 0)
                latest = [r for r in latest if r.item_id == wanted]
            return Response(200, render.latest_body(latest, wrong_types))
        if path == "/timeseries":
            timestep = query.get("timestep", [""])[0]
            if timestep not in TIMESTEP_SECONDS:
                raise InvalidInput("timestep must be one of 5m, 1h, 6h, 24h", field="timestep")
            if "id" not in query:
                raise InvalidInput("id is required", field="id")
            item_id = _int_param(query, "id", 0)
            try:
                self.market.index_of(item_id)
            except InvalidInput:
                return Response(200, render.timeseries_body([], item_id))
            rows = self.market.timeseries(item_id, TIMESTEP_SECONDS[timestep],
                                          datetime.fromtimestamp(int(now), UTC))
            return Response(200, render.timeseries_body(rows, item_id, wrong_types))
        if path == "/news.rss":
            return Response(200, render.news_rss(now, self.seed), "application/rss+xml")
        if path == "/players":
            return Response(200, render.players_html(now, self.seed), "text/html; charset=utf-8")
        return Response(404, render.error_body(f"no endpoint {path}"))

    def control(self, method: str, path: str, doc: dict[str, Any]) -> Response:
        """The ``/_sim/*`` endpoints."""
        if path == "/_sim/faults":
            if method == "DELETE":
                self.faults.clear()
            elif method == "POST":
                paths = _paths(doc.get("paths"))
                if "next" in doc:
                    next_faults = doc["next"]
                    if isinstance(next_faults, int) and not isinstance(next_faults, bool):
                        # {"next": 3, "kind": "503"}: the next 3 requests get a 503
                        next_faults = [doc.get("kind", "")] * max(0, min(next_faults, 10_000))
                    if not isinstance(next_faults, list):
                        raise InvalidInput("'next' must be a list of faults or a count with "
                                           "'kind'", field="next")
                    self.faults.push(next_faults, paths)
                if "rate" in doc:
                    kinds = doc.get("kinds") or []
                    if not isinstance(kinds, list) or not isinstance(doc["rate"], int | float):
                        raise InvalidInput("'rate' must be a number and 'kinds' a list",
                                           field="rate")
                    self.faults.set_rate(float(doc["rate"]), kinds, paths)
            return Response(200, json.dumps(self.faults.state()).encode())
        if path == "/_sim/clock":
            if method == "DELETE":
                self.clock.reset()
            elif method == "POST":
                if "now" in doc:
                    self.clock.set(parse_epoch(doc["now"]), bool(doc.get("frozen", True)))
                if "advance" in doc:
                    self.clock.advance(float(doc["advance"]))
            return Response(200, json.dumps(self.clock.state()).encode())
        if path == "/_sim/moves":
            if method == "DELETE":
                self.market.moves.clear()
            elif method == "POST":
                self.market.moves.add(PriceMove.from_doc(doc, self.clock.now(), parse_epoch))
            return Response(200, json.dumps(self.market.moves.state()).encode())
        if path == "/_sim/stats":
            with self._lock:
                if method == "DELETE":
                    self.requests.clear()
                    self.user_agents.clear()
                counts, agents = dict(self.requests), dict(self.user_agents)
            return Response(200, json.dumps({"requests": counts, "total": sum(counts.values()),
                                              "user_agents": agents}).encode())
        return Response(404, render.error_body(f"no control endpoint {path}"))


def _paths(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise InvalidInput("'paths' must be a list of endpoint paths", field="paths")
    unknown = sorted(set(value) - MARKET_PATHS)
    if unknown:
        raise InvalidInput(f"unknown paths {unknown}; use {sorted(MARKET_PATHS)}",
                           field="paths")
    return value


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    text = values[0].strip()
    if not text.lstrip("-").isdigit():
        raise InvalidInput(f"{name} must be an integer", field=name)
    return int(text)


def parse_epoch(value: object) -> float:
    """Unix seconds from a number or an ISO-8601 string (naive means UTC).

    Raises:
        InvalidInput: for anything else.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInput(f"cannot read time {value!r}", field="now") from exc
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    raise InvalidInput("now must be Unix seconds or an ISO time", field="now")
