"""One API call of the wiki client: request building, retry bookkeeping, body limits.

Every decision (what to send, whether to retry, how long to wait, when the breaker opens,
how large and how slow a body may be) lives here; `gept.market.client.WikiClient` only
sends the requests and waits.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import httpx

from gept.core.errors import ConfigError, InvalidInput
from gept.market import parse
from gept.market.errors import (
    CircuitOpen,
    MalformedResponse,
    ResponseTooLarge,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gept.market.models import (
    ItemMapping,
    LatestPrice,
    NewsItem,
    PriceBlock,
    Rejection,
    Snapshot,
)
from gept.market.resilience import CircuitBreaker, RetryPolicy, parse_retry_after

log = logging.getLogger("gept.market.client")

R = TypeVar("R")
Timestep = Literal["5m", "1h", "6h", "24h"]
TIMESTEPS: tuple[str, ...] = ("5m", "1h", "6h", "24h")
BLOCK_SECONDS = {"/5m": 300, "/1h": 3600}

MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest JSON body accepted; /mapping is about 1.5 MB, /latest well under 1 MB."""
MAX_PAGE_BYTES = 4 * 1024 * 1024
"""Largest RSS or HTML body accepted."""
_GENERIC_AGENTS = ("python-httpx", "python-requests", "mozilla/", "curl/", "wget/")
_RETRYABLE = (MalformedResponse, UpstreamHTTPError, UpstreamTimeout, UpstreamUnreachable)


@dataclass(slots=True)
class ClientStats:
    """Counters a collector can export as metrics (monotonic over the client's life)."""

    attempts: int = 0
    """HTTP requests sent."""
    retries: int = 0
    """Waits followed by another try."""
    failures: int = 0
    """Calls that ended in an error after all tries."""
    circuit_refusals: int = 0
    """Calls refused because the circuit was open."""
    rejected_rows: int = 0
    """Rows left out by the parsers because a value was out of range."""


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """One logical API call: where to send it and how to turn the body into ``R``."""

    endpoint: str
    url: str
    params: dict[str, str] | None
    parse: Callable[[bytes], R]
    max_bytes: int


def check_user_agent(user_agent: str) -> str:
    """Refuse an empty or generic User-Agent; the wiki blocks anonymous scrapers.

    Raises:
        ConfigError: naming the ``wiki_user_agent`` setting.
    """
    ua = user_agent.strip()
    if not ua or ua.lower().startswith(_GENERIC_AGENTS):
        raise ConfigError(
            "a descriptive User-Agent naming the tool and a contact is required "
            "(GEPT_WIKI_USER_AGENT), e.g. 'gept-collector/0.1 (ops@example.org)'",
            field="wiki_user_agent")
    return ua


def block_epoch(timestamp: datetime | None, endpoint: str) -> int | None:
    """The Unix time of a block start, refusing naive or unaligned times.

    Raises:
        InvalidInput: when ``timestamp`` is naive or not a multiple of the block length.
    """
    if timestamp is None:
        return None
    step = BLOCK_SECONDS[endpoint]
    if timestamp.tzinfo is None:
        raise InvalidInput(f"{endpoint} timestamp must be timezone-aware (UTC)",
                           field="timestamp")
    epoch = timestamp.timestamp()
    if epoch != int(epoch) or int(epoch) % step:
        raise InvalidInput(
            f"{endpoint} timestamp must be a block start (a multiple of {step} s), "
            f"got {timestamp.isoformat()}", field="timestamp")
    return int(epoch)


class Attempts:
    """Retry and breaker bookkeeping for one call.

    Usage: for each attempt, ``begin()``; then ``succeeded()``, or ``failed(exc)`` which
    either returns the seconds to wait before the next attempt or raises the error.
    """

    def __init__(self, core: WikiCore, endpoint: str) -> None:
        self.core = core
        self.endpoint = endpoint
        self.total = core.retry.attempts
        self.attempt = 0
        self.last: MalformedResponse | UpstreamHTTPError | UpstreamTimeout | \
            UpstreamUnreachable | None = None

    def begin(self) -> None:
        """Count an attempt, or raise ``CircuitOpen`` when the breaker refuses it."""
        self.attempt += 1
        if not self.core.breaker.allow():
            self.core.stats.circuit_refusals += 1
            self.core.stats.failures += 1
            details = {"last_error": self.last.message} if self.last is not None else {}
            raise CircuitOpen(self.endpoint, self.core.breaker.retry_in(), **details)
        self.core.stats.attempts += 1

    def succeeded(self) -> None:
        """The attempt worked: close the breaker."""
        self.core.breaker.record_success()

    def failed(self, exc: BaseException) -> float:
        """Classify a failed attempt: the wait before retrying, or raise ``exc``."""
        core = self.core
        if isinstance(exc, UpstreamHTTPError) and exc.http_status != 429 \
                and exc.http_status < 500:
            # The server is alive and says the request is wrong: no retry, and no mark
            # against the breaker.
            core.breaker.record_success()
            core.stats.failures += 1
            raise exc
        if isinstance(exc, ResponseTooLarge):
            core.breaker.record_failure()  # the same URL will be as large next time
            core.stats.failures += 1
            raise exc
        if not isinstance(exc, _RETRYABLE):
            core.breaker.release()
            raise exc
        core.breaker.record_failure()
        self.last = exc
        if self.attempt >= self.total:
            core.stats.failures += 1
            exc.details["attempts"] = self.total
            raise exc
        retry_after = exc.retry_after if isinstance(exc, UpstreamHTTPError) else None
        delay = core.retry.wait_for(self.attempt, retry_after, core.rng)
        core.stats.retries += 1
        log.warning("%s attempt %d/%d failed (%s); retrying in %.2f s", self.endpoint,
                    self.attempt, self.total, exc.message, delay,
                    extra={"gept_endpoint": self.endpoint, "gept_attempt": self.attempt,
                           "gept_delay": round(delay, 3)})
        return delay


class BodyReader:
    """Collects one response body within a size limit and a whole-response deadline."""

    def __init__(self, endpoint: str, max_bytes: int, timeout: float) -> None:
        self.endpoint = endpoint
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.size = 0
        self.chunks: list[bytes] = []

    def start(self, resp: httpx.Response) -> None:
        """Check the status and the declared length before reading anything."""
        if resp.status_code >= 300:
            raise UpstreamHTTPError(self.endpoint, resp.status_code,
                                    retry_after=parse_retry_after(
                                        resp.headers.get("Retry-After")))
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ResponseTooLarge(self.endpoint, "body",
                                   f"{declared} bytes > limit {self.max_bytes}")

    def add(self, chunk: bytes) -> None:
        """Take one chunk, enforcing the limits."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ResponseTooLarge(self.endpoint, "body", f"more than {self.max_bytes} bytes")
        # httpx's read timeout is per read; a server trickling one byte at a time would
        # never trip it. Bound the whole body instead.
        if time.monotonic() > self.deadline:
            raise UpstreamTimeout(self.endpoint, self.timeout)
        self.chunks.append(chunk)

    def body(self) -> bytes:
        """Everything read."""
        return b"".join(self.chunks)

    def translate(self, exc: httpx.HTTPError
                  ) -> UpstreamTimeout | UpstreamUnreachable | MalformedResponse:
        """Our error for an httpx failure."""
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(self.endpoint, self.timeout)
        if isinstance(exc, httpx.DecodingError):  # e.g. a broken gzip stream
            return MalformedResponse(self.endpoint, "body", f"cannot decode ({exc})")
        return UpstreamUnreachable(self.endpoint, f"{type(exc).__name__}: {exc}")


class WikiCore:
    """Configuration, counters and request building of the client (`WikiClient`)."""

    def __init__(self, base_url: str, user_agent: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                 rng: random.Random | None = None,
                 max_json_bytes: int = MAX_JSON_BYTES) -> None:
        if timeout <= 0:
            raise InvalidInput("timeout must be positive", field="timeout")
        self.base_url = base_url.rstrip("/")
        self.user_agent = check_user_agent(user_agent)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.stats = ClientStats()
        self.last_rejected: tuple[Rejection, ...] = ()
        self.max_json_bytes = max_json_bytes
        self.rng = rng or random.Random()

    def _http_options(self) -> dict[str, Any]:
        return {
            "headers": {"User-Agent": self.user_agent, "Accept": "application/json, */*"},
            "timeout": httpx.Timeout(self.timeout),
            "follow_redirects": True,
            "max_redirects": 5,
        }

    def _accept(self, rows: list[R], rejected: list[Rejection]) -> list[R]:
        self.last_rejected = tuple(rejected)
        self.stats.rejected_rows += len(rejected)
        return rows

    def _api(self, endpoint: str, params: dict[str, str] | None,
             parser: Callable[[bytes], R]) -> Call[R]:
        return Call(endpoint, f"{self.base_url}{endpoint}", params, parser,
                    self.max_json_bytes)

    def _latest_call(self, item_id: int | None) -> Call[list[LatestPrice]]:
        params = {"id": str(item_id)} if item_id is not None else None

        def done(body: bytes) -> list[LatestPrice]:
            parsed = parse.parse_latest(body)
            return self._accept(parsed.rows, parsed.rejected)

        return self._api("/latest", params, done)

    def _snapshot_call(self, endpoint: str, timestamp: datetime | None) -> Call[Snapshot]:
        epoch = block_epoch(timestamp, endpoint)

        def done(body: bytes) -> Snapshot:
            snap = parse.parse_snapshot(body, endpoint, epoch)
            self._accept([], list(snap.rejected))
            return snap

        return self._api(endpoint, {"timestamp": str(epoch)} if epoch is not None else None,
                         done)

    def _mapping_call(self) -> Call[list[ItemMapping]]:
        def done(body: bytes) -> list[ItemMapping]:
            parsed = parse.parse_mapping(body)
            return self._accept(parsed.rows, parsed.rejected)

        return self._api("/mapping", None, done)

    def _timeseries_call(self, item_id: int, timestep: str) -> Call[list[PriceBlock]]:
        if timestep not in TIMESTEPS:
            raise InvalidInput(f"timestep must be one of {', '.join(TIMESTEPS)}",
                               field="timestep")
        if item_id < 0:
            raise InvalidInput("item_id must be >= 0", field="item_id")

        def done(body: bytes) -> list[PriceBlock]:
            parsed = parse.parse_timeseries(body, item_id)
            return self._accept(parsed.rows, parsed.rejected)

        return self._api("/timeseries", {"timestep": timestep, "id": str(item_id)}, done)

    def _news_call(self, feed_url: str) -> Call[list[NewsItem]]:
        return Call("news", feed_url, None, lambda body: parse.parse_news(body, "news"),
                    MAX_PAGE_BYTES)

    def _players_call(self, url: str) -> Call[int]:
        return Call("players", url, None, parse.parse_player_count, MAX_PAGE_BYTES)
