"""The engine's FastAPI application: ``create_app(settings)``.

Refuses to build without a real API key (``GEPT_ENGINE_API_KEY`` or
``GEPT_ENGINE_API_KEY_FILE``). The connection pool checks each connection before handing it
out and gives up quickly, so a PostgreSQL restart costs a few 503s rather than an engine
restart.

Example:
    $ GEPT_ENGINE_API_KEY=... gept serve --host 127.0.0.1 --port 8000
    >>> app = create_app(Settings())                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gept import __version__
from gept.core import logging as gept_logging
from gept.core.config import Settings, get_settings
from gept.engine import trades
from gept.engine.alerts import Monitor
from gept.engine.cache import DB_ERRORS, EngineState
from gept.engine.crowding import Crowding
from gept.engine.deps import DatabaseUnavailable, NotReady
from gept.engine.metrics import EngineMetrics
from gept.engine.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    install_log_record_factory,
)
from gept.engine.routes import (
    checkins,
    flips,
    health,
    items,
    legacy,
    opportunities,
    orders,
    outcomes,
    recommendations,
    webhooks,
)
from gept.engine.routes.orders import ItemRows
from gept.engine.routes.recommendations import Delivered
from gept.engine.security import ApiKey, RateLimiter
from gept.engine.websettings import WebSettings

log = logging.getLogger(__name__)

# How long a request waits for a pooled connection, and how long the pool keeps retrying a
# failed connection before giving up (and trying afresh on the next request). Short, so an
# outage is reported at once and the return of PostgreSQL is noticed within seconds.
POOL_TIMEOUT = 2.0
RECONNECT_TIMEOUT = 3.0

DESCRIPTION = """\
GePT's recommendation engine: Grand Exchange flips from the newest predictions batch.

Every `/api/v1` route except `/api/v1/health` needs the `X-API-Key` header;
`/webhooks/trades` is HMAC-signed instead. The clients' routes (web-contract.md) answer
exactly the shapes GePT's web app and Discord bot read; freshness travels in the
`X-Gept-Batch-Time`, `X-Gept-Age-Seconds` and `X-Gept-Stale` headers. Our own routes
(`/api/v1/flips`, `/api/v1/predictions`, `/api/v1/models`) carry `freshness` in the body.
"""


_ERROR_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                413: "payload_too_large", 429: "rate_limited", 503: "unavailable"}


def _error(request: Request, status: int, error: str, detail: object,
           headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"detail": detail, "error": error,
            "request_id": getattr(request.state, "request_id", None), **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_handlers(app: FastAPI) -> None:
    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        fields = [str(e["loc"][-1]) for e in errors if e.get("loc")]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: "
                            f"{e['msg']}" for e in errors)
        # Inputs are echoed back only by field name: they may be arbitrarily large.
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        return _error(request, 422, "invalid_parameter", detail, fields=fields,
                      message=f"invalid parameter: {message}")

    async def on_db_down(request: Request, exc: Exception) -> JSONResponse:
        state: EngineState = request.app.state.engine
        if not isinstance(exc, DatabaseUnavailable):
            state.mark_down(exc)
        return _error(request, 503, "database_unavailable",
                      "PostgreSQL is unreachable; the engine retries by itself, try again "
                      "in a few seconds", headers={"Retry-After": "5"})

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _error(request, exc.status_code, _ERROR_CODES.get(exc.status_code, "http_error"),
                      exc.detail, headers=dict(exc.headers) if exc.headers else None)

    async def on_not_ready(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, 503, "no_predictions",
                      "no predictions batch has been loaded yet", headers={"Retry-After": "5"})

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DatabaseUnavailable, on_db_down)
    app.add_exception_handler(NotReady, on_not_ready)
    for exc_type in DB_ERRORS:
        app.add_exception_handler(exc_type, on_db_down)


async def _resync(pool: AsyncConnectionPool[Any], web: WebSettings,
                  secret: str | None) -> None:
    """Rebuild an empty trade registry from the web app (E3, else E2), once at start."""
    if not (web.users_dsn() or (web.web_resync_url and secret)):
        return
    try:
        async with pool.connection() as conn:
            outcome = await trades.resync_if_empty(conn, users_dsn=web.users_dsn(),
                                                   resync_url=web.web_resync_url,
                                                   secret=secret)
        log.info("trade registry: %s", outcome)
    except DB_ERRORS as exc:
        log.warning("trade registry resync skipped: database unreachable: %s", exc)


def create_app(settings: Settings | None = None, *, refresh_interval: float = 1.0,
               web: WebSettings | None = None) -> FastAPI:
    """Build the engine application.

    Args:
        settings: configuration (default: from the environment, ``GEPT_*``).
        refresh_interval: seconds between checks for a new predictions batch.
        web: the web app's settings (default: from the environment, ``GEPT_*``).

    Raises:
        ConfigError: when no usable API key is configured.

    Example:
        >>> app = create_app()                                # doctest: +SKIP
    """
    settings = settings or get_settings()
    api_key = ApiKey(settings.api_key())
    web = web or WebSettings()
    webhook_secret = web.secret()
    dsn = settings.db_dsn()
    # An entry point (uvicorn workers import this factory directly): set up logging here.
    gept_logging.configure(settings.log_level, settings.log_json)
    install_log_record_factory()
    metrics = EngineMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
            timeout=POOL_TIMEOUT, reconnect_timeout=RECONNECT_TIMEOUT,
            check=AsyncConnectionPool.check_connection, open=False, name="gept-engine",
            kwargs={"connect_timeout": max(1, int(settings.db_connect_timeout)),
                    "application_name": "gept-engine", "autocommit": True})
        # open(wait=False): the engine starts (and reports 503) even when PostgreSQL is down.
        await pool.open(wait=False)
        read_pool: AsyncConnectionPool[Any] | None = None
        if settings.database_read_url:  # predictions reads from a standby
            read_pool = AsyncConnectionPool(
                settings.db_dsn(settings.database_read_url), min_size=1,
                max_size=settings.db_pool_max, timeout=POOL_TIMEOUT,
                reconnect_timeout=RECONNECT_TIMEOUT, check=AsyncConnectionPool.check_connection,
                open=False, name="gept-engine-reads",
                kwargs={"connect_timeout": max(1, int(settings.db_connect_timeout)),
                        "application_name": "gept-engine-reads", "autocommit": True})
            await read_pool.open(wait=False)
        state = EngineState(pool, stale_after_seconds=settings.stale_after_seconds,
                            refresh_interval=refresh_interval, read_pool=read_pool,
                            outage_grace_seconds=settings.db_outage_grace_seconds)
        app.state.engine = state
        await state.start()
        monitor = Monitor(pool, web, webhook_secret, metrics, app.state.crowding)
        app.state.monitor = monitor
        await _resync(pool, web, webhook_secret)
        monitor.start()
        log.info("engine started: batch %s, database %s",
                 state.snapshot.batch_time.isoformat() if state.snapshot else "none",
                 "up" if state.db_up else "down")
        try:
            yield
        finally:
            await monitor.stop()
            await state.stop()
            if read_pool is not None:
                await read_pool.close()
            await pool.close()

    app = FastAPI(title="GePT recommendation engine", version=__version__,
                  description=DESCRIPTION, lifespan=lifespan)
    app.state.api_key = api_key
    app.state.limiter = RateLimiter(settings.engine_rate_limit_per_minute)
    app.state.metrics = metrics
    app.state.web = web
    app.state.webhook_secret = webhook_secret
    app.state.crowding = Crowding(limit=web.crowding_limit,
                                  window_seconds=web.crowding_window_seconds)
    app.state.delivered = Delivered()
    app.state.item_rows = ItemRows()
    app.state.pages = opportunities.Pages()
    # The hottest routes first: routes are matched in order. Their plain twins answer; the
    # FastAPI routes behind them document them (see routes/flips.py, PlainRoute).
    for hot in (recommendations.hot_route, orders.hot_route, opportunities.hot_route,
                flips.hot_route):
        app.router.routes.insert(0, hot)
    app.include_router(orders.router)
    app.include_router(outcomes.router)
    app.include_router(checkins.router)
    # Before W1's router: /api/v1/recommendations/item (O11) would match /{rec_id} there.
    app.include_router(legacy.router)
    app.include_router(recommendations.router)
    app.include_router(opportunities.router)
    app.include_router(flips.router)
    app.include_router(items.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    _install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=web.engine_max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
