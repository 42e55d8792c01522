"""The asyncio twin of ``WikiClient``: the same calls, retries, breaker and limits.

Every decision is shared with the sync client (``gept.market.calls``); only waiting
(``asyncio.sleep``, injectable) and reading bytes differ.

Example:
    >>> async def main(url: str) -> int:                      # doctest: +SKIP
    ...     async with AsyncWikiClient(url, "gept-x/0.1 (ops@example.org)") as client:
    ...         return len((await client.five_minute()).rows)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from gept.core.config import Settings, get_settings
from gept.market.calls import (
    MAX_JSON_BYTES,
    Attempts,
    BodyReader,
    Call,
    Timestep,
    WikiCore,
)
from gept.market.models import ItemMapping, LatestPrice, NewsItem, PriceBlock, Snapshot
from gept.market.resilience import CircuitBreaker, RetryPolicy

R = TypeVar("R")


class AsyncWikiClient(WikiCore):
    """Asynchronous client for the OSRS Wiki prices API; arguments as ``WikiClient``,
    except ``sleep`` is a coroutine function and ``transport`` an async transport."""

    def __init__(self, base_url: str, user_agent: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 max_json_bytes: int = MAX_JSON_BYTES) -> None:
        super().__init__(base_url, user_agent, timeout=timeout, retry=retry, breaker=breaker,
                         rng=rng, max_json_bytes=max_json_bytes)
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())

    @classmethod
    def from_settings(cls, settings: Settings | None = None,
                      **overrides: Any) -> AsyncWikiClient:
        """A client configured from ``GEPT_WIKI_*`` settings.

        Raises:
            ConfigError: when ``GEPT_WIKI_USER_AGENT`` is missing or names no contact.
        """
        s = settings or get_settings()
        kwargs: dict[str, Any] = {"timeout": s.wiki_timeout,
                                  "retry": RetryPolicy(attempts=max(1, s.wiki_retries))}
        kwargs.update(overrides)
        return cls(s.wiki_base_url, s.user_agent(), **kwargs)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncWikiClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def latest(self, item_id: int | None = None) -> list[LatestPrice]:
        """See ``WikiClient.latest``."""
        return await self._run(self._latest_call(item_id))

    async def five_minute(self, timestamp: datetime | None = None) -> Snapshot:
        """See ``WikiClient.five_minute``."""
        return await self._run(self._snapshot_call("/5m", timestamp))

    async def hourly(self, timestamp: datetime | None = None) -> Snapshot:
        """See ``WikiClient.hourly``."""
        return await self._run(self._snapshot_call("/1h", timestamp))

    async def mapping(self) -> list[ItemMapping]:
        """See ``WikiClient.mapping``."""
        return await self._run(self._mapping_call())

    async def timeseries(self, item_id: int, timestep: Timestep | str = "5m"
                         ) -> list[PriceBlock]:
        """See ``WikiClient.timeseries``."""
        return await self._run(self._timeseries_call(item_id, timestep))

    async def news(self, feed_url: str) -> list[NewsItem]:
        """See ``WikiClient.news``."""
        return await self._run(self._news_call(feed_url))

    async def player_count(self, url: str) -> int:
        """See ``WikiClient.player_count``."""
        return await self._run(self._players_call(url))

    async def _run(self, call: Call[R]) -> R:
        attempts = Attempts(self, call.endpoint)
        while True:
            attempts.begin()
            try:
                result = call.parse(await self._fetch(call))
            except BaseException as exc:
                delay = attempts.failed(exc)  # raises when giving up (and on cancellation)
            else:
                attempts.succeeded()
                return result
            await self._sleep(delay)

    async def _fetch(self, call: Call[Any]) -> bytes:
        reader = BodyReader(call.endpoint, call.max_bytes, self.timeout)
        try:
            async with self._http.stream("GET", call.url, params=call.params) as resp:
                reader.start(resp)
                async for chunk in resp.aiter_bytes():
                    reader.add(chunk)
        except httpx.HTTPError as exc:
            raise reader.translate(exc) from exc
        return reader.body()
