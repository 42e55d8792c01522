"""The clients' recommendation routes (web-contract.md W1, W2, the bot's calls; O7, O9, O12).

``GET /api/v1/recommendations`` answers a **bare camelCase array** (or the original's two
wrapped variants with ``include_metadata`` / ``return_all``); our freshness and the model
selection travel in headers (``X-Gept-Batch-Time``, ``X-Gept-Stale``, ``X-Gept-Model``), so
no shape the clients read changes. Bad parameters are 422 whatever the state of predictions.

Example:
    $ curl -H "X-API-Key: $KEY" "https://ampere/api/v1/recommendations?capital=10000000&\\
        style=hybrid&risk=medium&slots=8&max_offset_pct=0.015&user_id=k3x9a"
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gept.engine.cache import EngineState, Snapshot
from gept.engine.contract import (
    CONTRACT_REC_ID_PATTERN,
    contract_rec_id,
    parse_contract_rec_id,
    web_recommendation,
)
from gept.engine.crowding import Crowding
from gept.engine.deps import AuthStateDep, authorize, serving
from gept.engine.policy import CAPITAL_MIN, RISKS, SLOTS_MAX, Risk, Style
from gept.engine.recommend import (
    Candidate,
    Recommendation,
    margin_stream,
    parse_rec_id,
    pick_from,
    quantity,
)
from gept.engine.routes.flips import CAPITAL_MAX, CSV_IDS, PlainRoute, parse_query, query_parameters
from gept.engine.schemas import ERRORS
from gept.engine.selection import model_selection
from gept.engine.webschemas import (
    AllRecommendationsOut,
    WebRecommendationOut,
    WithMetadataOut,
)

router = APIRouter(prefix="/api/v1/recommendations", tags=["recommendations"],
                   responses=ERRORS)

SLOTS_UNLIMITED = 20
OFFSET_MIN, OFFSET_MAX = 0.0125, 0.025
_REC_IDS = r"^[A-Za-z0-9_\-]{1,40}(,[A-Za-z0-9_\-]{1,40})*$"
_ANY_REC_ID = rf"({CONTRACT_REC_ID_PATTERN})|(^rec-[0-9-]{{1,32}}$)"
UserId = Annotated[str | None, Field(None, min_length=1, max_length=128,
                                     pattern=r"^[A-Za-z0-9_\-]+$",
                                     description="The caller's user hash (crowding control)")]


class WebRecommendationQuery(BaseModel):
    """Query of ``GET /api/v1/recommendations`` as the web app and the bot send it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    capital: int = Field(ge=CAPITAL_MIN, le=CAPITAL_MAX, description="Gold for all slots")
    style: Style = "hybrid"
    risk: Risk = "medium"
    user_tier: Literal["free", "premium", "unlimited"] = "free"
    slots: int = Field(4, ge=1, le=SLOTS_UNLIMITED,
                       description="GE slots (1-8; up to 20 with user_tier=unlimited)")
    user_id: UserId = None
    exclude: str | None = Field(None, pattern=_REC_IDS, max_length=4000,
                                description="Comma-separated rec ids already shown")
    exclude_item_ids: str | None = Field(None, pattern=CSV_IDS, max_length=2000,
                                         description="Comma-separated item ids to leave out")
    offset_pct: float | None = Field(None, ge=OFFSET_MIN, le=OFFSET_MAX)
    min_offset_pct: float | None = Field(None, ge=OFFSET_MIN, le=OFFSET_MAX)
    max_offset_pct: float | None = Field(None, ge=OFFSET_MIN, le=OFFSET_MAX)
    max_hour_offset: int | None = Field(None, ge=1, le=48)
    min_ev: float | None = Field(None, ge=0, le=1)
    include_metadata: bool = False
    return_all: bool = False
    use_beta_model: bool = False

    @field_validator("slots")
    @classmethod
    def _slots_for_tier(cls, value: int, info: ValidationInfo) -> int:
        if value > SLOTS_MAX and info.data.get("user_tier") != "unlimited":
            raise ValueError(f"at most {SLOTS_MAX} slots unless user_tier=unlimited")
        return value

    @field_validator("max_offset_pct")
    @classmethod
    def _margin_order(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min_offset_pct")
        if value is not None and low is not None and value < low:
            raise ValueError("max_offset_pct must not be below min_offset_pct")
        return value


def excluded_items(exclude: str | None, exclude_item_ids: str | None) -> frozenset[int]:
    """Item ids named by ``exclude_item_ids`` and by the rec ids of ``exclude``."""
    out = {int(x) for x in (exclude_item_ids or "").split(",") if x}
    for rid in (exclude or "").split(","):
        parsed = parse_contract_rec_id(rid)
        if parsed is not None:
            out.add(parsed[0])
            continue
        old = parse_rec_id(rid)
        if old is not None:
            out.add(old[1])
    return frozenset(out)


class Delivered:
    """Recommendations recently answered, by id (the bot looks them up again, O12)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._recs: OrderedDict[str, tuple[Candidate, datetime]] = OrderedDict()

    def add(self, rec_id: str, cand: Candidate, batch_time: datetime) -> None:
        """Remember one answered recommendation (oldest forgotten first)."""
        self._recs[rec_id] = (cand, batch_time)
        if len(self._recs) > self.size:
            self._recs.popitem(last=False)

    def get(self, rec_id: str) -> tuple[Candidate, datetime] | None:
        """The candidate and batch time behind an id, if recently answered."""
        return self._recs.get(rec_id)


def freshness_headers(state: EngineState, snap: Snapshot, model: str) -> dict[str, str]:
    """Our freshness, where it breaks no shape the clients read."""
    fresh = state.freshness(snap.batch_time)
    return {"X-Gept-Batch-Time": snap.batch_iso,
            "X-Gept-Age-Seconds": f"{fresh.age_seconds or 0:.1f}",
            "X-Gept-Stale": "true" if fresh.stale else "false", "X-Gept-Model": model}


def _candidates(snap: Snapshot, q: WebRecommendationQuery) -> Iterable[Candidate]:
    key = (q.style, q.risk)
    lo, hi = q.min_offset_pct, q.max_offset_pct
    if q.offset_pct is not None:
        lo = hi = q.offset_pct
    if lo is None and hi is None:
        return snap.ranked.get(key, ())
    risk = RISKS[q.risk]
    lo = max(lo or risk.min_offset_pct, risk.min_offset_pct)
    hi = min(hi or risk.max_offset_pct, risk.max_offset_pct)
    return margin_stream(snap.by_offset.get(key, {}), lo, hi)


async def recommendations(request: Request) -> Response:
    """The best flips for this capital, style, risk and margin, as the clients read them.

    Excluded items (``exclude`` rec ids, ``exclude_item_ids``) and items crowded by other
    users are left out; with ``use_beta_model`` only a beta model's predictions are served
    when one exists (``X-Gept-Model`` says which).
    """
    # The hottest route parses its own query and key: FastAPI's per-parameter dependency
    # machinery costs several times the recommendation itself. Same checks, same errors.
    state = authorize(request, request.headers.get("x-api-key"))
    q = parse_query(request, WebRecommendationQuery)
    snap = serving(state).snapshot
    crowding: Crowding = request.app.state.crowding
    delivered: Delivered = request.app.state.delivered
    exclude = excluded_items(q.exclude, q.exclude_item_ids)
    models, model_header = model_selection(snap, q.use_beta_model)
    user = q.user_id

    def keep(c: Candidate) -> bool:
        return (c.item_id not in exclude
                and (q.max_hour_offset is None or c.hour_offset <= q.max_hour_offset)
                and (q.min_ev is None or c.expected_value >= q.min_ev)
                and (models is None or c.model_id in models)
                and not crowding.crowded(c.item_id, user))

    picks = pick_from(_candidates(snap, q), capital=q.capital,
                      slots=None if q.return_all else q.slots, keep=keep)
    out = []
    for cand, qty in picks:
        rid = contract_rec_id(cand.item_id, snap.batch_time)
        delivered.add(rid, cand, snap.batch_time)
        out.append(web_recommendation(Recommendation(rid, cand, qty, snap.batch_time),
                                      snap.item_info(cand.item_id), rec_id=rid,
                                      static=snap.web_static(cand)))
    crowding.record(user, (c.item_id for c, _ in picks))
    body: object = out
    if q.return_all:
        now = datetime.now(UTC)
        body = {"recommendations": out, "generated_at": _iso(now),
                "valid_until": _iso(now + timedelta(minutes=5)), "total_count": len(out)}
    elif q.include_metadata:
        fresh = state.freshness(snap.batch_time)
        body = {"recommendations": out, "metadata": {
            "inference_at": snap.batch_iso, "inference_age_seconds": fresh.age_seconds,
            "stale": fresh.stale, "stale_threshold_seconds": fresh.stale_after_seconds}}
    return Response(orjson.dumps(body), media_type="application/json",
                    headers=freshness_headers(state, snap, model_header))


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


hot_route = PlainRoute("/api/v1/recommendations", recommendations, methods=["GET"],
                       name="recommendations_hot", include_in_schema=False)
"""``recommendations`` as a plain route, matched before its documented twin below."""


@router.get("", response_model=list[WebRecommendationOut] | WithMetadataOut
            | AllRecommendationsOut, summary="Recommended flips (W1)",
            openapi_extra={"parameters": query_parameters(WebRecommendationQuery),
                           "security": [{"APIKeyHeader": []}]})
async def recommendations_documented(request: Request) -> Response:
    """Documents ``GET /api/v1/recommendations`` (the plain route above answers it)."""
    return await recommendations(request)


ItemPath = Annotated[int, Path(ge=1, le=2_147_483_647, description="OSRS item id")]


@router.get("/item/{item_id}", response_model=WebRecommendationOut,
            summary="The recommendation for one item (W2); 404 when not recommended")
async def for_item(
    request: Request, state: AuthStateDep, item_id: ItemPath,
    capital: Annotated[int | None, Query(ge=CAPITAL_MIN, le=CAPITAL_MAX)] = None,
    style: Style = "hybrid", risk: Risk = "medium",
    slots: Annotated[int, Query(ge=1, le=SLOTS_UNLIMITED)] = 1,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128,
                                         pattern=r"^[A-Za-z0-9_\-]+$")] = None,
    include_price_history: bool = False,
) -> Response:
    """The item's best configuration for this style and risk, sized for the capital.

    404 ("not recommended") when the item has no eligible, affordable, profitable
    configuration in the newest batch.
    """
    snap = serving(state).snapshot
    cand = snap.by_item.get((style, risk), {}).get(item_id)
    per_slot = None if capital is None else capital // slots
    qty = 0 if cand is None else quantity(cand, per_slot)
    if cand is None or qty <= 0 or cand.unit_profit <= 0:
        raise HTTPException(404, detail=f"item {item_id} is not recommended for "
                                        f"style={style} risk={risk}")
    rid = contract_rec_id(item_id, snap.batch_time)
    request.app.state.delivered.add(rid, cand, snap.batch_time)
    body = web_recommendation(Recommendation(rid, cand, qty, snap.batch_time),
                              snap.item_info(item_id), rec_id=rid)
    if include_price_history:
        from gept.engine import prices
        async with state.pool.connection() as conn:
            body["priceHistory"] = await prices.sparkline(conn, item_id, 24)
    return Response(orjson.dumps(body), media_type="application/json",
                    headers=freshness_headers(state, snap, "active"))


@router.get("/item/{item_id}/refresh", summary="An item's current prices (O10)")
async def refresh(state: AuthStateDep, item_id: ItemPath) -> dict[str, Any]:
    """The item's best buy and sell prices in the newest batch."""
    snap = serving(state).snapshot
    cand = next((c for c in (snap.by_item.get(k, {}).get(item_id) for k in snap.by_item)
                 if c is not None), None)
    if cand is None:
        raise HTTPException(404, detail=f"item {item_id} has no prices in the newest batch")
    return {"itemId": item_id, "itemName": cand.item_name, "buyPrice": cand.buy_price,
            "sellPrice": cand.sell_price, "updatedAt": snap.batch_iso}


@router.get("/{rec_id}", response_model=WebRecommendationOut,
            summary="One recommendation by id (O12)")
async def by_id(
    state: AuthStateDep, request: Request,
    rec_id: Annotated[str, Path(pattern=_ANY_REC_ID, max_length=40,
                                description="rec_{item_id}_{YYYYMMDDHH}")],
) -> Response:
    """A recommendation answered recently, or the item's best in the batch of that hour."""
    snap = serving(state).snapshot
    found = request.app.state.delivered.get(rec_id)
    if found is None:
        parsed = parse_contract_rec_id(rec_id)
        if parsed is not None and contract_rec_id(parsed[0], snap.batch_time) == rec_id:
            cand = snap.by_item.get(("hybrid", "medium"), {}).get(parsed[0]) or next(
                (c for c in snap.browse if c.item_id == parsed[0]), None)
            found = None if cand is None else (cand, snap.batch_time)
        old = parse_rec_id(rec_id)
        if old is not None and rec_id in snap.by_id:
            found = (snap.by_id[rec_id], snap.batch_time)
    if found is None:
        raise HTTPException(404, detail=f"recommendation {rec_id} not found")
    cand, batch_time = found
    rec = Recommendation(rec_id, cand, quantity(cand, None), batch_time)
    body = web_recommendation(rec, snap.item_info(cand.item_id), rec_id=rec_id)
    return Response(orjson.dumps(body), media_type="application/json",
                    headers=freshness_headers(state, snap, "active"))
