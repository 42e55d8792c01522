"""Liveness, readiness, health and metrics: the routes probes and Prometheus call.

``/healthz`` and ``/ready`` and ``/api/v1/health`` need no key (runbooks probe them with a
bare ``curl``) and reveal nothing secret: no DSN, no key, no host names.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gept import __version__
from gept.engine import repository
from gept.engine.cache import DB_ERRORS
from gept.engine.deps import OpenStateDep, StateDep
from gept.engine.metrics import EngineMetrics
from gept.engine.schemas import ErrorOut, FreshnessOut, HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and its event loop answers (no database check)."""
    return {"status": "ok"}


@router.get("/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}},
            summary="Readiness")
async def ready(state: StateDep) -> JSONResponse:
    """200 once the database answers and a predictions batch is loaded, else 503."""
    reason = None
    if not state.db_up:
        reason = "database unreachable"
    elif state.snapshot is None:
        reason = "no predictions batch yet"
    body = ReadyOut(ready=reason is None, reason=reason,
                    freshness=FreshnessOut.model_validate(state.freshness().to_dict()))
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if reason is None else 503)


@router.get("/api/v1/health", response_model=HealthOut,
            responses={503: {"model": HealthOut}, 429: {"model": ErrorOut}},
            summary="Health (no key needed)")
async def health(state: OpenStateDep) -> JSONResponse:
    """Database reachability and latency, predictions age, ACTIVE models, version, uptime.

    ``error`` (HTTP 503) when the database is unreachable or no batch exists; ``degraded``
    when the newest batch is stale or no model is ACTIVE; ``ok`` otherwise.
    """
    reasons: list[str] = []
    newest, active, latency = None, None, None
    t0 = time.perf_counter()
    try:
        async with state.pool.connection(timeout=2.0) as conn:
            newest, active = await repository.health(conn)
        latency = round((time.perf_counter() - t0) * 1000, 2)
        reachable = True
    except DB_ERRORS as exc:
        state.mark_down(exc)
        reachable = False
        reasons.append("database unreachable")
    fresh = state.freshness(newest) if reachable else state.freshness()
    if reachable and newest is None:
        reasons.append("no predictions batch")
    status = "error" if reasons else "ok"
    if status == "ok":
        if fresh.stale:
            reasons.append(f"newest batch is older than {state.stale_after_seconds} s")
        if active == 0:
            reasons.append("no ACTIVE model in the registry")
        if reasons:
            status = "degraded"
    body = {
        "status": status, "reasons": reasons,
        "database": {"reachable": reachable, "latency_ms": latency},
        "predictions_age_seconds": None if fresh.age_seconds is None
        else round(fresh.age_seconds, 1),
        "models_active": active, "version": __version__,
        "uptime_seconds": round(state.uptime_seconds, 1), "freshness": fresh.to_dict(),
    }
    return JSONResponse(body, status_code=503 if status == "error" else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: StateDep, request: Request) -> Response:
    """Request counters and latency histograms; predictions age; registry and inference."""
    m: EngineMetrics = request.app.state.metrics
    fresh = state.freshness()
    m.predictions_age.set(float("inf") if fresh.age_seconds is None else fresh.age_seconds)
    try:
        async with state.pool.connection(timeout=2.0) as conn:
            rows = await repository.ops_gauges(conn)
        for row in rows:
            m.models_active.set(row["models_active"])
            if row["last_success"] is not None:
                m.inference_last_success.labels(row["role"]).set(row["last_success"])
            if row["last_failed"] is not None:
                m.inference_last_failed.labels(row["role"]).set(1 if row["last_failed"] else 0)
    except DB_ERRORS as exc:
        state.mark_down(exc)
    monitor = getattr(request.app.state, "monitor", None)
    if monitor is not None:
        m.alert_monitor_lag.set(monitor.lag_seconds())
    m.db_up.set(1 if state.db_up else 0)
    return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
