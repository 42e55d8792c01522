"""Check-ins on trades: ``POST /api/v1/guidance`` (O22), ``GET /api/v1/trades/updates`` (O23).

Both answer from the W6 advice (:mod:`gept.engine.checkins`). A polled id is a trade of the
registry (its real prices, quantity and age) or a recommendation id the engine can resolve
(``rec_{item}_{YYYYMMDDHH}`` of the newest batch, or one it answered recently: priced as
listed then, 30 minutes in); unknown ids are skipped, as in the original engine.

Example:
    $ curl -H "X-API-Key: $KEY" 'https://ampere/api/v1/trades/updates?tradeIds=t-1,rec_4151_2026120203'
    {"updates": [{"id": "update_001", "tradeId": "t-1", "type": "ADJUST_PRICE", ...}],
     "nextCheckIn": 30}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from gept.engine.advice import Order, advise
from gept.engine.cache import EngineState, Snapshot
from gept.engine.checkins import (
    MAX_TRADE_IDS,
    GuidanceIn,
    GuidanceOut,
    TradeUpdatesOut,
    guidance,
    next_check_in,
    trade_update,
)
from gept.engine.contract import contract_rec_id, parse_contract_rec_id
from gept.engine.deps import AuthStateDep, serving
from gept.engine.routes.orders import ItemRows, alternatives, rows_or_404
from gept.engine.schemas import ERRORS

router = APIRouter(prefix="/api/v1", tags=["check-ins"], responses=ERRORS)

REC_AGE_MINUTES = 30  # a polled recommendation is judged as a listing this old


@router.post("/guidance", response_model=GuidanceOut, summary="Check-in guidance (O22)")
async def check_in(request: Request, state: AuthStateDep, body: GuidanceIn) -> dict[str, Any]:
    """Hold, relist, exit or sell now, and when to check in again; 404 without predictions."""
    snap = serving(state).snapshot
    rows = await rows_or_404(request, state, snap, body.item_id)
    order = Order(body.order_type, body.user_price, body.quantity, body.time_elapsed_minutes)
    advice = advise(order, rows, alternatives(snap, body.item_id)
                    if body.order_type == "buy" else [])
    return guidance(advice, user_price=body.user_price, progress=body.reported_progress)


async def _registry(state: EngineState, ids: list[str]) -> dict[str, tuple[int, Order]]:
    """Open trades of the registry among ``ids``: id -> (item, Order)."""
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT trade_id, item_id, sell_price, quantity, buy_price, expected_hours, "
            "created_at FROM engine_trades WHERE status = 'open' AND trade_id = ANY (%s)",
            (ids,))
        rows = await cur.fetchall()
    now = datetime.now(UTC)
    return {tid: (item, Order("sell", sell, qty, max(0, int((now - made).total_seconds() // 60)),
                              buy, hours))
            for tid, item, sell, qty, buy, hours, made in rows}


def _recommendation(request: Request, snap: Snapshot, rec_id: str) -> tuple[int, Order] | None:
    """A recommendation id the engine can resolve, as a sell listed at its price."""
    found = request.app.state.delivered.get(rec_id)
    cand = None if found is None else found[0]
    parsed = parse_contract_rec_id(rec_id)
    if cand is None and parsed is not None \
            and contract_rec_id(parsed[0], snap.batch_time) == rec_id:
        cand = next((c for c in snap.browse if c.item_id == parsed[0]), None)
    if cand is None:
        return None
    return cand.item_id, Order("sell", cand.sell_price, max(1, cand.max_quantity or 1),
                               REC_AGE_MINUTES, cand.buy_price, cand.hour_offset)


@router.get("/trades/updates", response_model=TradeUpdatesOut,
            summary="Updates for polled trades (O23)")
async def updates(
    request: Request, state: AuthStateDep,
    tradeIds: Annotated[str, Query(min_length=1, max_length=2000,  # noqa: N803 (the contract)
                                   pattern=r"^[A-Za-z0-9_\-.:, ]+$",
                                   description="Comma-separated trade or recommendation ids")],
    user_id: Annotated[str | None, Query(min_length=1, max_length=128,
                                         pattern=r"^[A-Za-z0-9_\-]+$")] = None,
) -> dict[str, Any]:
    """ADJUST_PRICE / SELL_NOW for the polled trades that need them; ``nextCheckIn`` in s."""
    ids = list(dict.fromkeys(t.strip() for t in tradeIds.split(",") if t.strip()))
    if not ids or len(ids) > MAX_TRADE_IDS or any(len(t) > 128 for t in ids):
        raise HTTPException(422, detail=f"tradeIds must name 1 to {MAX_TRADE_IDS} ids")
    snap = serving(state).snapshot
    known = await _registry(state, ids)
    cache: ItemRows = request.app.state.item_rows
    out: list[dict[str, Any]] = []
    for trade_id in ids:
        found = known.get(trade_id) or _recommendation(request, snap, trade_id)
        if found is None:
            continue                      # unknown, closed or expired: nothing to say
        item, order = found
        rows = await cache.get(state, snap.batch_time, item)
        if not rows:
            continue
        update = trade_update(advise(order, rows, []), trade_id, sell_price=order.user_price,
                              number=len(out) + 1)
        if update is not None:
            out.append(update)
    return {"updates": out, "nextCheckIn": next_check_in(out)}
