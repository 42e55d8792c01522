"""Dependencies of the routes, declared once as ``Annotated`` aliases.

All are ``async def`` even when they do not await: FastAPI runs plain ``def`` dependencies
in a thread pool, which costs more than the whole recommendation.

Routes never open connections or read settings themselves; they ask for ``AuthStateDep``
(key checked), ``ConnDep`` (key checked, a pooled connection) or ``OpenStateDep`` (no key,
rate-limited per client). The hottest route calls ``serving_request`` directly (key checked,
the batch in memory), without the dependency machinery.

Example:
    >>> @router.get("/x")                                   # doctest: +SKIP
    ... async def x(state: AuthStateDep, conn: ConnDep) -> dict[str, str]: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
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


async def get_state(request: Request) -> EngineState:
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


def _authorize(request: Request, presented: str | None) -> EngineState:
    key: ApiKey = request.app.state.api_key
    ok = key.matches(presented)
    _limit(request, f"{key.fingerprint if ok else 'anonymous'}:{_client(request)}")
    if not ok:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="missing or invalid X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
    state: EngineState = request.app.state.engine
    return state


async def require_api_key(request: Request,
                          presented: Annotated[str | None, Security(api_key_header)]
                          ) -> EngineState:
    """Reject (401) requests without the right ``X-API-Key``; rate-limit per key and client."""
    return _authorize(request, presented)


async def rate_limit_client(request: Request) -> EngineState:
    """Rate-limit an unauthenticated route per client address."""
    _limit(request, f"open:{_client(request)}")
    state: EngineState = request.app.state.engine
    return state


AuthStateDep = Annotated[EngineState, Depends(require_api_key)]
"""The engine state, for a request that presented the key (within its rate limit)."""
OpenStateDep = Annotated[EngineState, Depends(rate_limit_client)]
"""The engine state, for an open route (within the client's rate limit)."""


@dataclass(frozen=True, slots=True)
class Serving:
    """What a route answering from memory needs: the state and the batch in memory."""

    state: EngineState
    snapshot: Snapshot


def serving_request(request: Request, presented: str | None) -> Serving:
    """Authorize, then the newest batch in memory; 503 while the database is down or no
    batch exists. Called directly by the hottest route (no dependency machinery).
    """
    return serving(authorize(request, presented))


def authorize(request: Request, presented: str | None) -> EngineState:
    """401 without the right key (rate-limited per key and client); the engine state."""
    return _authorize(request, presented)


def serving(state: EngineState) -> Serving:
    """The batch in memory; 503 while the database is down (past the outage grace, see
    :attr:`EngineState.can_serve`) or no batch exists.

    Routes call it in their body, after FastAPI validated their parameters (a dependency
    would run before that validation), so bad input is 422 whatever the state of predictions.
    """
    if not state.can_serve:
        raise DatabaseUnavailable(state.db_error or "database not reachable yet")
    if state.snapshot is None:
        raise NotReady()
    return Serving(state, state.snapshot)




async def get_conn(state: AuthStateDep) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection for one authorized request (checked before it is handed out)."""
    async with state.pool.connection() as conn:
        yield conn


ConnDep = Annotated[AsyncConnection[Any], Depends(get_conn)]
