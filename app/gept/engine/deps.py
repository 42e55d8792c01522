"""Dependencies of the routes, declared once as ``Annotated`` aliases.

Routes never open connections or read settings themselves; they ask for ``StateDep``,
``ConnDep``, ``SnapshotDep`` and are protected by ``ApiKeyDep``.

Example:
    >>> @router.get("/x")                                   # doctest: +SKIP
    ... async def x(_: ApiKeyDep, snap: SnapshotDep) -> dict[str, str]: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from psycopg import AsyncConnection

from gept.engine.cache import EngineState, Snapshot
from gept.engine.security import ApiKey, RateLimiter

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="The engine's API key (GEPT_ENGINE_API_KEY)")


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached right now; answered as 503 with a clear body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotReady(Exception):
    """No predictions batch has been loaded yet; answered as 503."""


def get_state(request: Request) -> EngineState:
    """The worker's engine state (pool, reachability, snapshot)."""
    state: EngineState = request.app.state.engine
    return state


StateDep = Annotated[EngineState, Depends(get_state)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(request: Request, bucket: str) -> None:
    limiter: RateLimiter = request.app.state.limiter
    wait = limiter.hit(bucket)
    if wait:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            detail=f"rate limit of {limiter.per_minute} requests per minute "
                                   "exceeded",
                            headers={"Retry-After": str(int(wait))})


def require_api_key(request: Request,
                    presented: Annotated[str | None, Security(api_key_header)]) -> None:
    """Reject (401) requests without the right ``X-API-Key``; rate-limit per key and client."""
    key: ApiKey = request.app.state.api_key
    ok = key.matches(presented)
    _limit(request, f"{key.fingerprint if ok else 'anonymous'}:{_client(request)}")
    if not ok:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="missing or invalid X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})


def rate_limit_client(request: Request) -> None:
    """Rate-limit an unauthenticated route per client address."""
    _limit(request, f"open:{_client(request)}")


ApiKeyDep = Annotated[None, Depends(require_api_key)]
OpenLimitDep = Annotated[None, Depends(rate_limit_client)]


def current_snapshot(state: StateDep) -> Snapshot:
    """The newest batch in memory; 503 while the database is down or no batch exists."""
    if not state.db_up:
        raise DatabaseUnavailable(state.db_error or "database not reachable yet")
    if state.snapshot is None:
        raise NotReady()
    return state.snapshot


SnapshotDep = Annotated[Snapshot, Depends(current_snapshot)]


async def get_conn(state: StateDep) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection for one request (the pool checks it before handing it out)."""
    async with state.pool.connection() as conn:
        yield conn


ConnDep = Annotated[AsyncConnection[Any], Depends(get_conn)]
