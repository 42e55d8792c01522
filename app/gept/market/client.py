"""The OSRS Wiki real-time prices client: typed rows out, good manners toward the wiki.

Every call sends the descriptive User-Agent the wiki requires, bounds the whole response
by a timeout and a size limit, retries what is worth retrying (429, 5xx, timeouts,
connection errors, malformed bodies) with exponential backoff and jitter, honours
``Retry-After``, and stops calling behind a circuit breaker after repeated failures.
Client errors other than 429 (400, 404, ...) are not retried: asking again will not help.
The decisions live in ``gept.market.calls``.

Example:
    >>> from gept.market.client import WikiClient
    >>> client = WikiClient("http://127.0.0.1:8765", "gept-docs/0.1 (ops@example.org)")
    >>> snap = client.five_minute()          # doctest: +SKIP
    >>> snap.timestamp, len(snap.rows)       # doctest: +SKIP
    (datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc), 4000)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from gept.core.config import Settings, get_settings
from gept.market.calls import (
    MAX_JSON_BYTES,
    MAX_PAGE_BYTES,
    TIMESTEPS,
    Attempts,
    BodyReader,
    Call,
    ClientStats,
    Timestep,
    WikiCore,
    block_epoch,
    check_user_agent,
)
from gept.market.models import ItemMapping, LatestPrice, NewsItem, PriceBlock, Snapshot
from gept.market.resilience import CircuitBreaker, RetryPolicy

__all__ = ["MAX_JSON_BYTES", "MAX_PAGE_BYTES", "TIMESTEPS", "ClientStats", "Timestep",
           "WikiClient", "block_epoch", "check_user_agent"]

R = TypeVar("R")


class WikiClient(WikiCore):
    """Synchronous client for the OSRS Wiki prices API (or the simulator, same shapes).

    Args:
        base_url: e.g. ``https://prices.runescape.wiki/api/v1/osrs`` or a simulator URL.
        user_agent: names the tool and a contact; generic agents are refused.
        timeout: seconds for one whole attempt (connect + headers + body).
        retry: attempts and backoff; ``RetryPolicy()`` by default.
        breaker: circuit breaker (share one between clients to share the verdict);
            one per client by default.
        sleep: how to wait between attempts (tests inject a recorder).
        rng: randomness for jitter (tests inject a seeded one).
        transport: an httpx transport (tests may inject one; normally None).
        max_json_bytes: largest JSON body accepted.

    Attributes:
        stats: ``ClientStats`` counters (attempts, retries, failures, circuit refusals,
            rejected rows) for metrics.
        breaker: the ``CircuitBreaker``; ``breaker.state`` is closed/open/half-open.
        last_rejected: rows the last call's parser refused (out-of-range values).
    """

    def __init__(self, base_url: str, user_agent: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 transport: httpx.BaseTransport | None = None,
                 max_json_bytes: int = MAX_JSON_BYTES) -> None:
        super().__init__(base_url, user_agent, timeout=timeout, retry=retry, breaker=breaker,
                         rng=rng, max_json_bytes=max_json_bytes)
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, **self._http_options())

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> WikiClient:
        """A client configured from ``GEPT_WIKI_*`` settings.

        Raises:
            ConfigError: when ``GEPT_WIKI_USER_AGENT`` is missing or names no contact.

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
        return self._run(self._latest_call(item_id))

    def five_minute(self, timestamp: datetime | None = None) -> Snapshot:
        """The 5-minute block starting at ``timestamp`` (or the latest block) from ``/5m``.

        Raises:
            InvalidInput: when ``timestamp`` is naive or not a multiple of 300 s.
        """
        return self._run(self._snapshot_call("/5m", timestamp))

    def hourly(self, timestamp: datetime | None = None) -> Snapshot:
        """The 1-hour block starting at ``timestamp`` (or the latest block) from ``/1h``.

        Raises:
            InvalidInput: when ``timestamp`` is naive or not a multiple of 3600 s.
        """
        return self._run(self._snapshot_call("/1h", timestamp))

    def mapping(self) -> list[ItemMapping]:
        """Static data of every item from ``/mapping`` (changes rarely; cache it)."""
        return self._run(self._mapping_call())

    def timeseries(self, item_id: int, timestep: Timestep | str = "5m") -> list[PriceBlock]:
        """Up to 365 recent blocks of one item from ``/timeseries``, oldest first.

        Raises:
            InvalidInput: for an unknown ``timestep`` or a negative ``item_id``.
        """
        return self._run(self._timeseries_call(item_id, timestep))

    def news(self, feed_url: str) -> list[NewsItem]:
        """Articles of an RSS feed (the official OSRS news, or the simulator's /news.rss)."""
        return self._run(self._news_call(feed_url))

    def player_count(self, url: str) -> int:
        """Players online, read from the sentence on the OSRS home page (or /players)."""
        return self._run(self._players_call(url))

    # -- machinery ----------------------------------------------------------------------

    def _run(self, call: Call[R]) -> R:
        """GET and parse, retrying what is worth retrying; raise the last error otherwise."""
        attempts = Attempts(self, call.endpoint)
        while True:
            attempts.begin()
            try:
                result = call.parse(self._fetch(call))
            except BaseException as exc:
                delay = attempts.failed(exc)  # raises when giving up
            else:
                attempts.succeeded()
                return result
            self._sleep(delay)

    def _fetch(self, call: Call[Any]) -> bytes:
        """One attempt: the whole body within ``timeout`` seconds and the size limit."""
        reader = BodyReader(call.endpoint, call.max_bytes, self.timeout)
        try:
            with self._http.stream("GET", call.url, params=call.params) as resp:
                reader.start(resp)
                for chunk in resp.iter_bytes():
                    reader.add(chunk)
        except httpx.HTTPError as exc:  # timeouts, transport errors, too many redirects
            raise reader.translate(exc) from exc
        return reader.body()
