"""Items (search W3, price history W4), their predictions; the model registry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from gept.engine import prices, repository
from gept.engine.contract import category_of, icon_url
from gept.engine.deps import AuthStateDep, ConnDep
from gept.engine.schemas import ERRORS, ItemPredictionsOut, ModelsOut
from gept.engine.webschemas import ItemSearchResultOut, WebPriceHistoryOut

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


@router.get("/items/search", response_model=list[ItemSearchResultOut],
            summary="Find items by name (W3, O14)")
async def search(conn: ConnDep,
                 q: Annotated[str, Query(min_length=1, max_length=100,
                                         description="Part of the item's name")],
                 limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[dict[str, Any]]:
    """A bare array: ``itemId, name, category`` (the bot's fields) and ``id, acronym, icon``
    (the web UI's). Case-insensitive substring match; exact and prefix matches first.
    """
    items = await repository.search_items(conn, q.replace("\x00", ""), limit)
    return [{"itemId": i["item_id"], "id": i["item_id"], "name": i["name"],
             "category": category_of(i["name"], members=i["members"]),
             "acronym": acronym(i["name"]), "icon": icon_url(i["icon"])} for i in items]


@router.get("/items/{item_id}/price-history", response_model=WebPriceHistoryOut,
            summary="An item's hourly prices and trend (W4, O15)")
async def price_history(conn: ConnDep, item_id: ItemId,
                        hours: Annotated[int, Query(ge=1, le=168)] = 24) -> dict[str, Any]:
    """Hourly ``high``/``low`` of the last ``hours`` (at most a week), and the trend."""
    found = await prices.hourly(conn, item_id, hours)
    if found is None:
        raise HTTPException(404, detail=f"item {item_id} not found")
    name, history = found
    trend, change = prices.history_trend(history)
    return {"itemId": item_id, "itemName": name, "history": history, "trend": trend,
            "change24h": change}


def acronym(name: str) -> str | None:
    """Initials of a multi-word name (``Abyssal whip`` -> ``AW``), as players search."""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalpha()]
    return "".join(w[0].upper() for w in words) if len(words) > 1 else None


@router.get("/models", response_model=ModelsOut, summary="The model registry")
async def models(state: AuthStateDep, conn: ConnDep,
                 status: Annotated[Literal["PENDING", "ACTIVE", "DEPRECATED", "SUNSET",
                                           "ARCHIVED"] | None, Query()] = None
                 ) -> dict[str, Any]:
    """Registry entries, ACTIVE first (paths and artifact hashes are not exposed)."""
    rows = await repository.models(conn, status)
    return {"models": rows, "active": sum(1 for r in rows if r["status"] == "ACTIVE"),
            "freshness": state.freshness().to_dict()}
