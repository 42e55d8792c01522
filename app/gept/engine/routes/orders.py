"""``POST /api/v1/recommendations/update``: advice on an active order (W6, O21).

The item's predictions of the newest batch are read once per batch and item, then served
from memory (see :mod:`gept.engine.advice` for the rules).

Example:
    $ curl -H "X-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"item_id": 4151,
        "order_type": "sell", "user_price": 1600000, "quantity": 2,
        "time_elapsed_minutes": 90, "buy_price": 1500000, "expected_hours": 4}' \\
        https://ampere/api/v1/recommendations/update
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Body, HTTPException, Request, Response

from gept.engine import prices
from gept.engine.advice import Order, advise
from gept.engine.cache import DB_ERRORS, EngineState, Snapshot
from gept.engine.deps import DatabaseUnavailable, authorize, serving
from gept.engine.routes.flips import PlainRoute, parse_body
from gept.engine.routes.recommendations import freshness_headers
from gept.engine.schemas import ERRORS
from gept.engine.selection import order_model
from gept.engine.webschemas import OrderUpdateIn, OrderUpdateOut

router = APIRouter(prefix="/api/v1/recommendations", tags=["orders"], responses=ERRORS)


class ItemRows:
    """Each item's prediction rows of the served batch (loaded on first use)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self.batch: datetime | None = None
        self.rows: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    async def get(self, state: EngineState, batch_time: datetime,
                  item_id: int) -> list[dict[str, Any]]:
        """The rows of ``item_id`` in ``batch_time`` (empty when the item has none)."""
        if self.batch != batch_time:
            self.batch, self.rows = batch_time, OrderedDict()
        found = self.rows.get(item_id)
        if found is None:
            try:
                async with state.pool.connection() as conn:
                    found = await prices.item_rows(conn, batch_time, item_id)
            except DB_ERRORS as exc:
                state.mark_down(exc)
                raise DatabaseUnavailable(str(exc)) from exc
            self.rows[item_id] = found
            if len(self.rows) > self.size:
                self.rows.popitem(last=False)
        return found


async def rows_or_404(request: Request, state: EngineState, snap: Snapshot,
                      item_id: int) -> list[dict[str, Any]]:
    """The item's rows of the served batch; 404 when the item has none (W6, O22)."""
    cache: ItemRows = request.app.state.item_rows
    rows = await cache.get(state, snap.batch_time, item_id)
    if not rows:
        raise HTTPException(404, detail=f"item {item_id} has no predictions in the "
                                        "newest batch")
    return rows


def alternatives(snap: Snapshot, item_id: int, n: int = 3) -> list[dict[str, Any]]:
    """The best other items of the batch (for ``abort_retry``)."""
    out = []
    for c in snap.browse:
        if c.item_id != item_id and c.unit_profit > 0:
            qty = max(1, c.max_quantity or 1)
            out.append({"item_id": c.item_id, "item_name": c.item_name,
                        "expected_profit": c.unit_profit * qty,
                        "fill_probability": c.fill_probability,
                        "expected_hours": c.hour_offset})
            if len(out) == n:
                break
    return out


async def update(request: Request) -> Response:
    """Advice for one active order; 404 when the item has no predictions.

    ``model_id`` and ``use_beta_model`` choose the model as :mod:`gept.engine.selection`
    says; ``X-Gept-Model`` names the model the advice came from and, when the request
    could not be followed, why.
    """
    state = authorize(request, request.headers.get("x-api-key"))
    body = parse_body(await request.body(), OrderUpdateIn)
    snap = serving(state).snapshot
    rows = await rows_or_404(request, state, snap, body.item_id)
    order = Order(body.order_type, body.user_price, body.quantity, body.time_elapsed_minutes,
                  body.buy_price, body.expected_hours)
    answer = advise(order, rows, alternatives(snap, body.item_id)
                    if body.order_type == "buy" else [])
    # One model predicts an item in a batch: the advice is that model's; the header says
    # whether it is the one the trade asked for (model_id) or a beta one (use_beta_model).
    served = rows[0]["model_id"]
    model = order_model(None if served is None else int(served), snap.beta_model_ids,
                        item_id=body.item_id, model_id=body.model_id,
                        use_beta=body.use_beta_model)
    return Response(orjson.dumps(answer), media_type="application/json",
                    headers=freshness_headers(state, snap, model))


hot_route = PlainRoute("/api/v1/recommendations/update", update, methods=["POST"],
                       name="update_hot", include_in_schema=False)


@router.post("/update", response_model=OrderUpdateOut, summary="Advice on an active order (W6)",
             openapi_extra={"security": [{"APIKeyHeader": []}]})
async def update_documented(request: Request, order: OrderUpdateIn = Body(...)) -> Response:
    """Documents ``POST /api/v1/recommendations/update`` (the plain route answers it)."""
    return await update(request)
