"""Items, their predictions and price history; the model registry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from gept.engine import repository
from gept.engine.deps import AuthStateDep, ConnDep
from gept.engine.schemas import (
    ERRORS,
    ItemPredictionsOut,
    ItemSearchOut,
    ModelsOut,
    PriceHistoryOut,
)

router = APIRouter(prefix="/api/v1", tags=["items"], responses=ERRORS)

ItemId = Annotated[int, Path(ge=1, le=2_147_483_647, description="OSRS item id")]


@router.get("/predictions/{item_id}", response_model=ItemPredictionsOut,
            summary="An item's predictions in the newest batch")
async def item_predictions(state: AuthStateDep, conn: ConnDep,
                           item_id: ItemId) -> dict[str, Any]:
    """Every (window, offset) of the item in the newest batch, and the best by EV x fill."""
    batch_time = state.newest_seen
    item, rows = await repository.item_predictions(conn, batch_time, item_id)
    if item is None:
        raise HTTPException(404, detail=f"item {item_id} not found")
    best = max(rows, key=lambda r: (r["expected_value"] * r["fill_probability"],
                                    -r["hour_offset"]), default=None)
    return {"item_id": item_id, "item_name": item["name"], "buy_limit": item["buy_limit"],
            "best": best, "predictions": rows,
            "freshness": state.freshness(batch_time).to_dict()}


@router.get("/items/search", response_model=ItemSearchOut, summary="Find items by name")
async def search(state: AuthStateDep, conn: ConnDep,
                 q: Annotated[str, Query(min_length=1, max_length=100,
                                         description="Part of the item's name")],
                 limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    """Case-insensitive substring match; exact and prefix matches first."""
    items = await repository.search_items(conn, q.replace("\x00", ""), limit)
    return {"items": items, "freshness": state.freshness().to_dict()}


@router.get("/items/{item_id}/price-history", response_model=PriceHistoryOut,
            summary="An item's 5-minute prices")
async def price_history(state: AuthStateDep, conn: ConnDep, item_id: ItemId,
                        hours: Annotated[int, Query(ge=1, le=168)] = 24) -> dict[str, Any]:
    """The OSRS Wiki 5-minute averages and volumes of the last ``hours`` (at most a week)."""
    found = await repository.price_history(conn, item_id, hours)
    if found is None:
        raise HTTPException(404, detail=f"item {item_id} not found")
    name, history = found
    return {"item_id": item_id, "item_name": name, "hours": hours, "history": history,
            "freshness": state.freshness().to_dict()}


@router.get("/models", response_model=ModelsOut, summary="The model registry")
async def models(state: AuthStateDep, conn: ConnDep,
                 status: Annotated[Literal["PENDING", "ACTIVE", "DEPRECATED", "SUNSET",
                                           "ARCHIVED"] | None, Query()] = None
                 ) -> dict[str, Any]:
    """Registry entries, ACTIVE first (paths and artifact hashes are not exposed)."""
    rows = await repository.models(conn, status)
    return {"models": rows, "active": sum(1 for r in rows if r["status"] == "ACTIVE"),
            "freshness": state.freshness().to_dict()}
