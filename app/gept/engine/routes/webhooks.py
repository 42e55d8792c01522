"""``POST /webhooks/trades``: the web app's trade events (W10, O29), HMAC-signed.

No API key: the ``X-Webhook-Timestamp`` / ``X-Webhook-Signature`` headers are the proof.
Refused with 401 (and nothing stored) when unsigned, outside the time window, forged, or a
replay of an accepted delivery; 413 above ``GEPT_ENGINE_MAX_BODY_BYTES``; 503 when no secret
is configured. An accepted event updates the persistent trade registry and crowding.

Example:
    $ body='{"eventType":"TRADE_CREATED",...}'; ts=$(date +%s000)
    $ sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -c1-64)
    $ curl -H "X-Webhook-Timestamp: $ts" -H "X-Webhook-Signature: $sig" -d "$body" \\
        https://ampere/webhooks/trades
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from gept.engine import trades
from gept.engine.deps import StateDep
from gept.engine.metrics import EngineMetrics
from gept.engine.schemas import ErrorOut
from gept.engine.webhook import WebhookRefused, verify
from gept.engine.webschemas import SuccessOut, TradeEventIn
from gept.engine.websettings import WebSettings

router = APIRouter(tags=["webhooks"])


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, detail=f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/webhooks/trades", response_model=SuccessOut,
             responses={401: {"model": ErrorOut}, 413: {"model": ErrorOut},
                        422: {"model": ErrorOut}, 503: {"model": ErrorOut}},
             summary="Trade lifecycle events from the web app (W10)")
async def trade_event(
    request: Request, state: StateDep,
    x_webhook_timestamp: Annotated[str | None, Header(max_length=32)] = None,
    x_webhook_signature: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, object]:
    """Verify the signature, then record the event in the trade registry."""
    web: WebSettings = request.app.state.web
    metrics: EngineMetrics = request.app.state.metrics
    secret = request.app.state.webhook_secret
    if secret is None:
        raise HTTPException(503, detail="trade webhooks are not configured "
                                        "(GEPT_WEBHOOK_SECRET)")
    raw = await read_limited(request, web.engine_max_body_bytes)
    try:
        sent_ms = verify(secret, x_webhook_timestamp, x_webhook_signature, raw,
                         tolerance_seconds=web.webhook_tolerance_seconds)
    except WebhookRefused as exc:
        metrics.webhook_rejections.labels(exc.reason).inc()
        raise HTTPException(401, detail=exc.message) from None
    try:
        event = TradeEventIn.model_validate_json(raw)
    except ValidationError as exc:
        metrics.webhook_rejections.labels("invalid_body").inc()
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    async with state.pool.connection() as conn:
        try:
            await trades.record(conn, event, x_webhook_signature or "", sent_ms)
        except trades.Replayed:
            metrics.webhook_rejections.labels("replayed").inc()
            raise HTTPException(401, detail="this signature was already accepted (replay)") \
                from None
        request.app.state.crowding.set_positions(await trades.positions(conn))
    metrics.webhook_events.labels(event.eventType).inc()
    return {"success": True, "message": f"{event.eventType} {event.tradeId} recorded"}
