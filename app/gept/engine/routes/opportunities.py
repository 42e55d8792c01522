"""``POST /api/v1/opportunities``: the web app's home-page list of flips (W5, O8).

Every item's best configuration over all styles and risks, filtered and paginated. Answers
are cached per batch and filter body (the home page sends the same body again and again),
so a repeated filter costs a dictionary lookup.

Quantities are sized for ``max_capital`` when given, otherwise for
:data:`BROWSE_CAPITAL` per item, within the buy limit and 5 % of the 24 h volume.

Example:
    $ curl -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \\
        -d '{"min_profit": 100000, "confidence": ["high"], "limit": 30}' \\
        https://ampere/api/v1/opportunities
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson
from fastapi import APIRouter, Body, Request, Response

from gept.engine.cache import Snapshot
from gept.engine.contract import opportunity
from gept.engine.deps import authorize, serving
from gept.engine.recommend import quantity
from gept.engine.routes.flips import PlainRoute, parse_body
from gept.engine.routes.recommendations import freshness_headers
from gept.engine.schemas import ERRORS
from gept.engine.selection import model_selection
from gept.engine.webschemas import OpportunitiesOut, OpportunityFilters

router = APIRouter(prefix="/api/v1", tags=["opportunities"], responses=ERRORS)

BROWSE_CAPITAL = 100_000_000
CACHE_SIZE = 512


def browse(snap: Snapshot, f: OpportunityFilters) -> dict[str, Any]:
    """The page of opportunities ``f`` selects (``items``, ``total``, ``has_more``)."""
    models, _ = model_selection(snap, f.use_beta_model)
    levels = set(f.confidence) if f.confidence else None
    cats = {c.lower() for c in f.categories} if f.categories else None
    per_item = f.max_capital or BROWSE_CAPITAL
    matched: list[dict[str, Any]] = []
    total = 0
    for c in snap.browse:
        if c.unit_profit <= 0 or c.buy_price > per_item:
            continue
        if levels is not None and c.confidence not in levels:
            continue
        if models is not None and c.model_id not in models:
            continue
        if f.min_hours is not None and c.hour_offset < f.min_hours:
            continue
        if f.max_hours is not None and c.hour_offset > f.max_hours:
            continue
        info = snap.item_info(c.item_id)
        if cats is not None and info.category.lower() not in cats:
            continue
        qty = quantity(c, per_item)
        if qty <= 0:
            continue
        profit = c.unit_profit * qty
        if (f.min_profit is not None and profit < f.min_profit) or \
                (f.max_profit is not None and profit > f.max_profit):
            continue
        if f.offset <= total < f.offset + f.limit:
            matched.append(opportunity(c, qty, info))
        total += 1
    return {"items": matched, "total": total, "has_more": f.offset + len(matched) < total}


class Pages:
    """Serialized answers per (batch, filter body); emptied when the batch changes."""

    def __init__(self) -> None:
        self.batch: object = None
        self.pages: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, snap: Snapshot, key: bytes) -> bytes | None:
        """The cached answer for this batch and body, if any."""
        if self.batch is not snap:
            self.batch, self.pages = snap, OrderedDict()
        return self.pages.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        """Remember an answer (the oldest forgotten first)."""
        self.pages[key] = value
        if len(self.pages) > CACHE_SIZE:
            self.pages.popitem(last=False)



async def opportunities(request: Request) -> Response:
    """Filtered, paginated opportunities (``items``, ``total``, ``has_more``)."""
    state = authorize(request, request.headers.get("x-api-key"))
    f = parse_body(await request.body(), OpportunityFilters)
    snap = serving(state).snapshot
    key = orjson.dumps(f.model_dump(), option=orjson.OPT_SORT_KEYS)
    pages: Pages = request.app.state.pages
    body = pages.get(snap, key)
    if body is None:
        body = orjson.dumps(browse(snap, f))
        pages.put(key, body)
    _, model = model_selection(snap, f.use_beta_model)
    return Response(body, media_type="application/json",
                    headers=freshness_headers(state, snap, model))


hot_route = PlainRoute("/api/v1/opportunities", opportunities, methods=["POST"],
                       name="opportunities_hot", include_in_schema=False)


@router.post("/opportunities", response_model=OpportunitiesOut,
             summary="Browse opportunities with filters and pagination (W5)",
             openapi_extra={"security": [{"APIKeyHeader": []}]})
async def opportunities_documented(request: Request,
                                   filters: OpportunityFilters = Body(...)) -> Response:
    """Documents ``POST /api/v1/opportunities`` (the plain route above answers it)."""
    return await opportunities(request)
