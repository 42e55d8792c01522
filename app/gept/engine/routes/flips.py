"""``/api/v1/flips``: our own rich recommendations (snake_case, wrapped, with freshness).

The clients' ``/api/v1/recommendations`` (a bare camelCase array) is in
``routes/recommendations.py``; this is the same ranking with every number we compute.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

from gept.engine import repository
from gept.engine.cache import DB_ERRORS
from gept.engine.deps import AuthStateDep, DatabaseUnavailable, authorize, serving
from gept.engine.policy import CAPITAL_MIN, SLOTS_MAX, Risk, Style
from gept.engine.recommend import (
    REC_ID_PATTERN,
    Recommendation,
    parse_rec_id,
    pick,
    quantity,
)
from gept.engine.schemas import ERRORS, RecommendationDetailOut, RecommendationsOut

router = APIRouter(prefix="/api/v1", tags=["flips"], responses=ERRORS)

Q = TypeVar("Q", bound=BaseModel)

CSV_IDS = r"^[0-9]{1,9}(,[0-9]{1,9})*$"
CAPITAL_MAX = 1_000_000_000_000


def exclusions(raw: str | None) -> frozenset[int]:
    """Item ids from a comma-separated query value (empty: none)."""
    if not raw:
        return frozenset()
    return frozenset(int(x) for x in raw.split(",") if x)


class RecommendationQuery(BaseModel):
    """Query parameters of ``GET /api/v1/flips``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    capital: int = Field(ge=CAPITAL_MIN, le=CAPITAL_MAX,
                         description="Gold available for all slots together (at least 1000)")
    style: Style = Field("hybrid", description="active 1-4 h, hybrid 2-12 h, passive 8-24 h "
                                               "windows")
    risk: Risk = Field("medium", description="low, medium or high: thresholds on expected "
                                             "value, fill probability and offsets")
    slots: int = Field(4, ge=1, le=SLOTS_MAX, description="GE slots to fill (1-8)")
    exclude_item_ids: str | None = Field(None, pattern=CSV_IDS, max_length=2000,
                                         description="Comma-separated item ids to leave out, "
                                                     "e.g. 4151,11832")


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
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


def parse_query(request: Request, model: type[Q]) -> Q:
    """Validate the query string as ``model``; 422 naming each field like FastAPI would."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def parse_body(raw: bytes, model: type[Q]) -> Q:
    """Validate a JSON body (empty: ``{}``) as ``model``; 422 naming each field like FastAPI."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


@router.get(
    "/flips", response_model=RecommendationsOut, summary="Recommended flips (our own shape)",
    openapi_extra={"parameters": query_parameters(RecommendationQuery),
                   "security": [{"APIKeyHeader": []}]},
)
async def flips(request: Request) -> Response:
    """One best configuration per item, ranked by expected value x fill probability.

    Quantities are bounded by the capital split across the slots, the item's GE buy limit
    and 5 % of its 24-hour traded volume; profits are after GE tax.
    """
    # The hottest route parses its own query and key: FastAPI's per-parameter dependency
    # machinery costs several times the recommendation itself. Same checks, same errors.
    state = authorize(request, request.headers.get("x-api-key"))
    q = parse_query(request, RecommendationQuery)
    serve = serving(state)
    snap = serve.snapshot
    recs = pick(snap.ranked, style=q.style, risk=q.risk, capital=q.capital, slots=q.slots,
                exclude=exclusions(q.exclude_item_ids), batch_time=snap.batch_time)
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


class PlainRoute(Route):
    """A Starlette route that records itself in the scope (for the metrics' route label).

    The hottest routes are served as plain routes, matched before their documented FastAPI
    twins (which stay for OpenAPI): same function, same checks, same errors; only FastAPI's
    per-request endpoint machinery is skipped, which measured 40 % of a route's time.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Starlette's match, with this route recorded in the scope (as FastAPI does)."""
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


hot_route = PlainRoute("/api/v1/flips", flips, methods=["GET"], name="flips_hot",
                       include_in_schema=False)


@router.get("/flips/{rec_id}", response_model=RecommendationDetailOut,
            summary="One flip by its id (our own shape)")
async def recommendation(
    state: AuthStateDep,
    rec_id: Annotated[str, Path(pattern=REC_ID_PATTERN, max_length=40,
                                description="An id from /api/v1/flips")],
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
    cand = snap.by_id.get(rec_id) if snap is not None and state.can_serve else None
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
