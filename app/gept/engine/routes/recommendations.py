"""``/api/v1/recommendations``: the flips to place now, computed from memory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from gept.engine import repository
from gept.engine.cache import DB_ERRORS
from gept.engine.deps import ApiKeyDep, DatabaseUnavailable, SnapshotDep, StateDep
from gept.engine.policy import CAPITAL_MIN, SLOTS_MAX, Risk, Style
from gept.engine.recommend import (
    REC_ID_PATTERN,
    Recommendation,
    parse_rec_id,
    pick,
    quantity,
)
from gept.engine.schemas import RecommendationDetailOut, RecommendationsOut

router = APIRouter(prefix="/api/v1/recommendations", tags=["recommendations"])

_CSV_IDS = r"^[0-9]{1,9}(,[0-9]{1,9})*$"
CAPITAL_MAX = 1_000_000_000_000


def _exclusions(raw: str | None) -> frozenset[int]:
    if not raw:
        return frozenset()
    return frozenset(int(x) for x in raw.split(",") if x)


@router.get("", response_model=RecommendationsOut, summary="Recommended flips")
async def recommendations(
    _: ApiKeyDep,
    snap: SnapshotDep,
    state: StateDep,
    capital: Annotated[int, Query(ge=CAPITAL_MIN, le=CAPITAL_MAX,
                                  description="Gold available for all slots together")],
    style: Annotated[Style, Query(description="active 1-4 h, hybrid 2-12 h, passive 8-24 h")]
    = "hybrid",
    risk: Annotated[Risk, Query(description="Thresholds on EV, fill probability, offsets")]
    = "medium",
    slots: Annotated[int, Query(ge=1, le=SLOTS_MAX, description="GE slots to fill")] = 4,
    exclude_item_ids: Annotated[str | None, Query(
        pattern=_CSV_IDS, max_length=2000,
        description="Comma-separated item ids to leave out, e.g. 4151,11832")] = None,
) -> dict[str, Any]:
    """One best configuration per item, ranked by expected value x fill probability.

    Quantities are bounded by the capital split across the slots, the item's GE buy limit
    and 5 % of its 24-hour traded volume; profits are after GE tax.
    """
    recs = pick(snap.ranked, style=style, risk=risk, capital=capital, slots=slots,
                exclude=_exclusions(exclude_item_ids), batch_time=snap.batch_time)
    return {
        "recommendations": [r.to_dict() for r in recs],
        "capital": capital, "capital_per_slot": capital // slots, "slots": slots,
        "style": style, "risk": risk,
        "freshness": state.freshness(snap.batch_time).to_dict(),
    }


@router.get("/{rec_id}", response_model=RecommendationDetailOut,
            summary="One recommendation by id")
async def recommendation(
    _: ApiKeyDep,
    state: StateDep,
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
