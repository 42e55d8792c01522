"""``/api/v1/recommendations``: the flips to place now, computed from memory."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

from gept.engine import repository
from gept.engine.cache import DB_ERRORS
from gept.engine.deps import AuthStateDep, DatabaseUnavailable, serving_request
from gept.engine.policy import CAPITAL_MIN, SLOTS_MAX, Risk, Style
from gept.engine.recommend import (
    REC_ID_PATTERN,
    Recommendation,
    parse_rec_id,
    pick,
    quantity,
)
from gept.engine.schemas import ERRORS, RecommendationDetailOut, RecommendationsOut

router = APIRouter(prefix="/api/v1/recommendations", tags=["recommendations"],
                   responses=ERRORS)

_CSV_IDS = r"^[0-9]{1,9}(,[0-9]{1,9})*$"
CAPITAL_MAX = 1_000_000_000_000


def _exclusions(raw: str | None) -> frozenset[int]:
    if not raw:
        return frozenset()
    return frozenset(int(x) for x in raw.split(",") if x)


class RecommendationQuery(BaseModel):
    """Query parameters of ``GET /api/v1/recommendations``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    capital: int = Field(ge=CAPITAL_MIN, le=CAPITAL_MAX,
                         description="Gold available for all slots together (at least 1000)")
    style: Style = Field("hybrid", description="active 1-4 h, hybrid 2-12 h, passive 8-24 h "
                                               "windows")
    risk: Risk = Field("medium", description="low, medium or high: thresholds on expected "
                                             "value, fill probability and offsets")
    slots: int = Field(4, ge=1, le=SLOTS_MAX, description="GE slots to fill (1-8)")
    exclude_item_ids: str | None = Field(None, pattern=_CSV_IDS, max_length=2000,
                                         description="Comma-separated item ids to leave out, "
                                                     "e.g. 4151,11832")


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI parameter objects from a model (the route validates the model itself)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        if "anyOf" in prop:  # Optional[X]: a query parameter is either absent or an X
            prop.update(next(p for p in prop.pop("anyOf") if p.get("type") != "null"))
        prop.pop("title", None)
        description = prop.pop("description", None)
        out.append({"name": name, "in": "query", "required": name in required,
                    "schema": prop, "description": description})
    return out


def _parse_query(request: Request) -> RecommendationQuery:
    try:
        return RecommendationQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


@router.get(
    "", response_model=RecommendationsOut, summary="Recommended flips",
    openapi_extra={"parameters": _query_parameters(RecommendationQuery),
                   "security": [{"APIKeyHeader": []}]},
)
async def recommendations(request: Request) -> Response:
    """One best configuration per item, ranked by expected value x fill probability.

    Quantities are bounded by the capital split across the slots, the item's GE buy limit
    and 5 % of its 24-hour traded volume; profits are after GE tax.
    """
    # The hottest route parses its own query and key: FastAPI's per-parameter dependency
    # machinery costs several times the recommendation itself. Same checks, same errors.
    serve = serving_request(request, request.headers.get("x-api-key"))
    q = _parse_query(request)
    snap = serve.snapshot
    recs = pick(snap.ranked, style=q.style, risk=q.risk, capital=q.capital, slots=q.slots,
                exclude=_exclusions(q.exclude_item_ids), batch_time=snap.batch_time)
    batch_iso = snap.batch_iso
    body = {
        "recommendations": [r.to_dict(batch_iso) for r in recs],
        "capital": q.capital, "capital_per_slot": q.capital // q.slots, "slots": q.slots,
        "style": q.style, "risk": q.risk,
        "freshness": serve.state.freshness(snap.batch_time).to_dict(batch_iso),
    }
    # Serialized directly: the shape is RecommendationsOut by construction (the tests check
    # it), and validating it again through pydantic would cost more than computing it.
    return Response(orjson.dumps(body), media_type="application/json")


class _PlainRoute(Route):
    """A Starlette route that records itself in the scope (for the metrics' route label)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


hot_route = _PlainRoute("/api/v1/recommendations", recommendations, methods=["GET"],
                        name="recommendations_hot", include_in_schema=False)
"""``recommendations`` as a plain Starlette route, matched before the documented FastAPI
route (which stays for OpenAPI). Same function, same checks, same errors: only FastAPI's
per-request endpoint machinery is skipped, which measured 40 % of this route's time."""


@router.get("/{rec_id}", response_model=RecommendationDetailOut,
            summary="One recommendation by id")
async def recommendation(
    state: AuthStateDep,
    rec_id: Annotated[str, Path(pattern=REC_ID_PATTERN, max_length=40,
                                description="An id from /api/v1/recommendations")],
    capital: Annotated[int | None, Query(ge=CAPITAL_MIN, le=CAPITAL_MAX,
                                         description="Size the quantity for this capital")]
    = None,
    slots: Annotated[int, Query(ge=1, le=SLOTS_MAX)] = 1,
) -> dict[str, Any]:
    """The configuration a recommendation id names, from its own batch (even an older one).

    Without ``capital`` the quantity is bounded only by the buy limit and recent volume.
    """
    parsed = parse_rec_id(rec_id)
    if parsed is None:
        raise HTTPException(404, detail=f"recommendation {rec_id} not found")
    batch_time, item_id, hours, offset = parsed
    snap = state.snapshot
    cand = snap.by_id.get(rec_id) if snap is not None and state.db_up else None
    if cand is None:
        try:
            async with state.pool.connection() as conn:
                cand = await repository.prediction_row(conn, batch_time, item_id, hours, offset)
        except DB_ERRORS as exc:
            state.mark_down(exc)
            raise DatabaseUnavailable(str(exc)) from exc
    if cand is None:
        raise HTTPException(404, detail=f"recommendation {rec_id} not found (unknown or "
                                        "its batch was removed by retention)")
    per_slot = None if capital is None else capital // slots
    rec = Recommendation(rec_id, cand, quantity(cand, per_slot), batch_time)
    return {"recommendation": rec.to_dict(), "freshness": state.freshness(batch_time).to_dict()}
