"""The original engine's older routes, kept because clients may still call them (O11, O24-O28).

Each is an alias of a contract route with the older parameter names, answered by the same
code: ``GET /health`` (O24, open) is ``/api/v1/health``; ``GET /recommendations`` (O25:
``user_hash``, ``count``, ``exclude_items``) is W1; ``GET /item/{id}`` (O26) is W2;
``GET /search-items`` (O27, ``limit`` ≤ 25) is W3; ``POST /trade-outcome`` (O28, ``rec_id``
in the body) is W7. ``GET /api/v1/recommendations/item?name=`` (O11) finds the item by name
and answers as W2; a 404 carries the closest names in ``X-Suggestions``.

Example:
    $ curl -H "X-API-Key: $KEY" 'https://ampere/recommendations?capital=50000000&count=4'
    $ curl -i -H "X-API-Key: $KEY" 'https://ampere/api/v1/recommendations/item?name=whip'
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gept.engine import repository
from gept.engine.deps import AuthStateDep, ConnDep
from gept.engine.policy import CAPITAL_MIN, Risk, Style
from gept.engine.routes import health, items
from gept.engine.routes import recommendations as w1
from gept.engine.routes.flips import CAPITAL_MAX, CSV_IDS
from gept.engine.routes.outcomes import outcome
from gept.engine.schemas import ERRORS, HealthOut
from gept.engine.webschemas import OFFSET_MAX, OFFSET_MIN, OutcomeIn, Sha256Hex, SuccessOut

router = APIRouter(tags=["legacy"], responses=ERRORS)
# The older names of W1's query parameters.
_W1_NAMES = {"user_hash": "user_id", "count": "slots", "exclude_items": "exclude_item_ids"}
SUGGESTIONS = 5

router.add_api_route("/health", health.health, methods=["GET"], summary="Health (O24, open)",
                     response_model=HealthOut)


@router.get("/recommendations", summary="Recommended flips, older names (O25)")
async def recommendations(
    request: Request,
    capital: Annotated[int, Query(ge=CAPITAL_MIN, le=CAPITAL_MAX)],
    style: Style = "hybrid", risk: Risk = "medium",
    count: Annotated[int, Query(ge=1, le=20)] = 4,
    user_hash: Annotated[str | None, Query(min_length=1, max_length=128,
                                           pattern=r"^[A-Za-z0-9_\-]+$")] = None,
    exclude_items: Annotated[str | None, Query(pattern=CSV_IDS, max_length=2000)] = None,
    min_offset_pct: Annotated[float | None, Query(ge=OFFSET_MIN, le=OFFSET_MAX)] = None,
    max_offset_pct: Annotated[float | None, Query(ge=OFFSET_MIN, le=OFFSET_MAX)] = None,
    include_metadata: bool = False,
) -> Response:
    """W1 under its older parameter names (``count`` up to 20 slots)."""
    query = {_W1_NAMES.get(k, k): v for k, v in request.query_params.items()
             if k in _W1_NAMES or k in ("capital", "style", "risk", "min_offset_pct",
                                        "max_offset_pct", "include_metadata")}
    if count > 8:
        query["user_tier"] = "unlimited"   # the older route allowed 20 without a tier
    scope = {**request.scope, "query_string": urlencode(query).encode()}
    return await w1.recommendations(Request(scope, request.receive))


@router.get("/item/{item_id}", summary="One item's recommendation (O26, alias of W2)")
async def item(
    request: Request, state: AuthStateDep, item_id: w1.ItemPath,
    capital: Annotated[int | None, Query(ge=CAPITAL_MIN, le=CAPITAL_MAX)] = None,
    style: Style = "hybrid", risk: Risk = "medium", include_price_history: bool = False,
) -> Response:
    """W2; 404 when the item is not recommended."""
    return await w1.for_item(request, state, item_id, capital=capital, style=style, risk=risk,
                             slots=1, user_id=None,
                             include_price_history=include_price_history)


@router.get("/search-items", summary="Find items by name (O27, alias of W3)")
async def search_items(conn: ConnDep,
                       q: Annotated[str, Query(min_length=1, max_length=100)],
                       limit: Annotated[int, Query(ge=1, le=25)] = 10) -> list[dict[str, Any]]:
    """W3 (``limit`` at most 25, as the older route had it)."""
    return await items.search(conn, q, limit)


class TradeOutcomeWebIn(BaseModel):
    """An outcome with its recommendation id in the body (O28)."""

    model_config = ConfigDict(extra="ignore")

    rec_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    userId: str = Sha256Hex  # noqa: N815 (the contract's name)
    itemId: int = Field(ge=1, le=2_147_483_647)  # noqa: N815
    itemName: str = Field(min_length=1, max_length=200)  # noqa: N815
    buyPrice: int = Field(ge=1, le=2_147_483_647)  # noqa: N815
    sellPrice: int = Field(ge=1, le=2_147_483_647)  # noqa: N815
    quantity: int = Field(ge=1, le=2_147_483_647)
    actualProfit: int = Field(ge=-(10**15), le=10**15)  # noqa: N815
    reportedAt: str = Field(min_length=1, max_length=40)  # noqa: N815


@router.post("/trade-outcome", response_model=SuccessOut,
             summary="Record a trade outcome (O28, alias of W7)")
async def trade_outcome(conn: ConnDep, body: TradeOutcomeWebIn) -> dict[str, Any]:
    """W7 with the recommendation id in the body."""
    fields = body.model_dump()
    rec_id = fields.pop("rec_id")
    return await outcome(conn, rec_id, OutcomeIn(recId=rec_id, **fields))


@router.get("/api/v1/recommendations/item", summary="One item's recommendation by name (O11)")
async def by_name(
    request: Request, state: AuthStateDep, conn: ConnDep,
    name: Annotated[str, Query(min_length=1, max_length=100, description="Part of a name")],
    capital: Annotated[int | None, Query(ge=CAPITAL_MIN, le=CAPITAL_MAX)] = None,
    style: Style = "hybrid", risk: Risk = "medium", include_price_history: bool = False,
) -> Response:
    """W2 for the best-matching item; 404 with ``X-Suggestions`` (other names) otherwise."""
    found = await repository.search_items(conn, name.replace("\x00", ""), SUGGESTIONS + 1)
    names = [f["name"] for f in found]
    if not found:
        raise HTTPException(404, detail=f"no item matches {name!r}",
                            headers={"X-Suggestions": ""})
    try:
        return await w1.for_item(request, state, int(found[0]["item_id"]), capital=capital,
                                 style=style, risk=risk, slots=1, user_id=None,
                                 include_price_history=include_price_history)
    except HTTPException as exc:
        if exc.status_code != 404:
            raise
        others = names[1:SUGGESTIONS + 1]
        raise HTTPException(404, detail=f"{names[0]} is not recommended for style={style} "
                                        f"risk={risk}",
                            headers={"X-Suggestions": ", ".join(quote(n, safe=" '()-")
                                                                for n in others)}) from None

