"""The OSRS Wiki real-time prices client: typed rows out, good manners toward the wiki.

Every call sends the descriptive User-Agent the wiki requires, bounds the whole response
by a timeout and a size limit, retries what is worth retrying (429, 5xx, timeouts,
connection errors, malformed bodies) with exponential backoff and jitter, honours
``Retry-After``, and stops calling behind a circuit breaker after repeated failures.
Client errors other than 429 (400, 404, ...) are not retried: asking again will not help.

Example:
    >>> from gept.market.client import WikiClient
    >>> client = WikiClient("http://127.0.0.1:8765", "gept-docs/0.1 (ops@example.org)")
    >>> snap = client.five_minute()          # doctest: +SKIP
    >>> snap.timestamp, len(snap.rows)       # doctest: +SKIP
    (datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc), 4000)
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from gept.core.config import Settings, get_settings
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

log = logging.getLogger(__name__)

R = TypeVar("R")
Timestep = Literal["5m", "1h", "6h", "24h"]
TIMESTEPS: tuple[str, ...] = ("5m", "1h", "6h", "24h")
BLOCK_SECONDS = {"/5m": 300, "/1h": 3600}

MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest JSON body accepted; /mapping is about 1.5 MB, /latest well under 1 MB."""
MAX_PAGE_BYTES = 4 * 1024 * 1024
"""Largest RSS or HTML body accepted."""
_GENERIC_AGENTS = ("python-httpx", "python-requests", "mozilla/", "curl/", "wget/")


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


class WikiClient:
    """Synchronous client for the OSRS Wiki prices API (or the simulator, same shapes).

    Args:
        base_url: e.g. ``https://prices.runescape.wiki/api/v1/osrs`` or a simulator URL.
        user_agent: names the tool and a contact; generic agents are refused.
        timeout: seconds for one whole attempt (connect + headers + body).
        retry: attempts and backoff; ``RetryPolicy()`` by default.
        breaker: shared circuit breaker; one per client by default.
        sleep: how to wait between attempts (tests inject a recorder).
        rng: randomness for jitter (tests inject a seeded one).
        transport: an httpx transport (tests may inject one; normally None).

    The ``last_rejected`` attribute holds the rows the last call's parser refused.
    """

    def __init__(self, base_url: str, user_agent: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 transport: httpx.BaseTransport | None = None,
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
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            headers={"User-Agent": self.user_agent, "Accept": "application/json, */*"},
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> WikiClient:
        """A client configured from ``GEPT_WIKI_*`` settings.

        Example:
            >>> client = WikiClient.from_settings()  # doctest: +SKIP
        """
        s = settings or get_settings()
        kwargs: dict[str, Any] = {
            "timeout": s.wiki_timeout,
            "retry": RetryPolicy(attempts=max(1, s.wiki_retries)),
        }
        kwargs.update(overrides)
        return cls(s.wiki_base_url, s.user_agent(), **kwargs)

    # -- context management -------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> WikiClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- endpoints ------------------------------------------------------------------------

    def latest(self, item_id: int | None = None) -> list[LatestPrice]:
        """The latest instant buy/sell of every item (or one item) from ``/latest``."""
        params = {"id": str(item_id)} if item_id is not None else None
        parsed = self._call("/latest", params, parse.parse_latest)
        return self._accept(parsed.rows, parsed.rejected)

    def five_minute(self, timestamp: datetime | None = None) -> Snapshot:
        """The 5-minute block starting at ``timestamp`` (or the latest block) from ``/5m``.

        Raises:
            InvalidInput: when ``timestamp`` is not a multiple of 300 s.
        """
        return self._snapshot("/5m", timestamp)

    def hourly(self, timestamp: datetime | None = None) -> Snapshot:
        """The 1-hour block starting at ``timestamp`` (or the latest block) from ``/1h``.

        Raises:
            InvalidInput: when ``timestamp`` is not a multiple of 3600 s.
        """
        return self._snapshot("/1h", timestamp)

    def mapping(self) -> list[ItemMapping]:
        """Static data of every item from ``/mapping`` (changes rarely; cache it)."""
        parsed = self._call("/mapping", None, parse.parse_mapping)
        return self._accept(parsed.rows, parsed.rejected)

    def timeseries(self, item_id: int, timestep: Timestep | str = "5m") -> list[PriceBlock]:
        """Up to 365 recent blocks of one item from ``/timeseries``, oldest first.

        Raises:
            InvalidInput: for an unknown ``timestep`` or a non-positive ``item_id``.
        """
        if timestep not in TIMESTEPS:
            raise InvalidInput(f"timestep must be one of {', '.join(TIMESTEPS)}",
                               field="timestep")
        if item_id < 0:
            raise InvalidInput("item_id must be >= 0", field="item_id")
        parsed = self._call("/timeseries", {"timestep": str(timestep), "id": str(item_id)},
                            lambda body: parse.parse_timeseries(body, item_id))
        return self._accept(parsed.rows, parsed.rejected)

    def news(self, feed_url: str) -> list[NewsItem]:
        """Articles of an RSS feed (the official OSRS news, or the simulator's /news.rss)."""
        return self._call("news", None, lambda body: parse.parse_news(body, "news"),
                          url=feed_url, max_bytes=MAX_PAGE_BYTES)

    def player_count(self, url: str) -> int:
        """Players online, read from the sentence on the OSRS home page (or /players)."""
        return self._call("players", None, lambda body: parse.parse_player_count(body),
                          url=url, max_bytes=MAX_PAGE_BYTES)

    # -- machinery ----------------------------------------------------------------------

    def _accept(self, rows: list[R], rejected: list[Rejection]) -> list[R]:
        self.last_rejected = tuple(rejected)
        self.stats.rejected_rows += len(rejected)
        return rows

    def _snapshot(self, endpoint: str, timestamp: datetime | None) -> Snapshot:
        epoch = block_epoch(timestamp, endpoint)
        params = {"timestamp": str(epoch)} if epoch is not None else None
        snap = self._call(endpoint, params,
                          lambda body: parse.parse_snapshot(body, endpoint, epoch))
        self.last_rejected = snap.rejected
        self.stats.rejected_rows += len(snap.rejected)
        return snap

    def _call(self, endpoint: str, params: dict[str, str] | None,
              parser: Callable[[bytes], R], *, url: str | None = None,
              max_bytes: int | None = None) -> R:
        """GET, parse, and retry what is worth retrying; raise the last error otherwise."""
        target = url or f"{self.base_url}{endpoint}"
        limit = max_bytes or self.max_json_bytes
        attempts = self.retry.attempts
        last: MalformedResponse | UpstreamHTTPError | UpstreamTimeout | UpstreamUnreachable
        for attempt in range(1, attempts + 1):
            if not self.breaker.allow():
                self.stats.circuit_refusals += 1
                self.stats.failures += 1
                details = {"last_error": last.message} if attempt > 1 else {}
                raise CircuitOpen(endpoint, self.breaker.retry_in(), **details)
            retry_after: float | None = None
            try:
                body = self._fetch(endpoint, target, params, limit)
                result = parser(body)
            except UpstreamHTTPError as exc:
                if exc.http_status != 429 and exc.http_status < 500:
                    # The server is alive and says the request is wrong: no retry, and
                    # no mark against the breaker.
                    self.breaker.record_success()
                    self.stats.failures += 1
                    raise
                retry_after = exc.retry_after
                last = exc
            except ResponseTooLarge:
                # The same URL will be just as large next time.
                self.breaker.record_failure()
                self.stats.failures += 1
                raise
            except (MalformedResponse, UpstreamTimeout, UpstreamUnreachable) as exc:
                last = exc
            except BaseException:
                self.breaker.release()
                raise
            else:
                self.breaker.record_success()
                return result
            self.breaker.record_failure()
            if attempt == attempts:
                break
            delay = self.retry.wait_for(attempt, retry_after, self._rng)
            self.stats.retries += 1
            log.warning("%s attempt %d/%d failed (%s); retrying in %.2f s", endpoint, attempt,
                        attempts, last.message, delay,
                        extra={"gept_endpoint": endpoint, "gept_attempt": attempt,
                               "gept_delay": round(delay, 3)})
            self._sleep(delay)
        self.stats.failures += 1
        last.details["attempts"] = attempts
        raise last

    def _fetch(self, endpoint: str, url: str, params: dict[str, str] | None,
               max_bytes: int) -> bytes:
        """One attempt: the whole body within ``timeout`` seconds and ``max_bytes`` bytes."""
        self.stats.attempts += 1
        deadline = time.monotonic() + self.timeout
        try:
            with self._http.stream("GET", url, params=params) as resp:
                if resp.status_code >= 300:
                    raise UpstreamHTTPError(
                        endpoint, resp.status_code,
                        retry_after=parse_retry_after(resp.headers.get("Retry-After")))
                declared = resp.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise ResponseTooLarge(endpoint, "body",
                                           f"{declared} bytes > limit {max_bytes}")
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ResponseTooLarge(endpoint, "body", f"more than {max_bytes} bytes")
                    # httpx's read timeout is per read; a server trickling one byte at a
                    # time would never trip it. Bound the whole body instead.
                    if time.monotonic() > deadline:
                        raise UpstreamTimeout(endpoint, self.timeout)
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(endpoint, self.timeout) from exc
        except httpx.RequestError as exc:  # transport errors, too many redirects
            raise UpstreamUnreachable(endpoint, f"{type(exc).__name__}: {exc}") from exc
