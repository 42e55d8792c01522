"""Outcomes, feedback and user stats (W7, W8; O17-O20), stored in the engine's tables.

The web app sends outcome and feedback fire-and-forget and reads only ``response.ok``.
``userId`` must be the SHA-256 hex of the user's id (422 otherwise), as the clients send it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from gept.engine import outcomes
from gept.engine.deps import ConnDep
from gept.engine.outcomes import Period
from gept.engine.schemas import ERRORS
from gept.engine.webschemas import FeedbackIn, FeedbackOut, OutcomeIn, SuccessOut

router = APIRouter(prefix="/api/v1", tags=["outcomes"], responses=ERRORS)

RecIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


@router.post("/recommendations/{rec_id}/outcome", response_model=SuccessOut,
             summary="Record a trade outcome (W7)")
async def outcome(conn: ConnDep, rec_id: RecIdPath, body: OutcomeIn) -> dict[str, Any]:
    """Store the outcome of a trade that followed recommendation ``rec_id``."""
    reported = outcomes.parse_time(body.reportedAt)
    if reported is None:
        raise HTTPException(422, detail="reportedAt must be an ISO 8601 time")
    if body.recId != rec_id:
        raise HTTPException(422, detail="recId in the body differs from the path")
    await outcomes.add_outcome(conn, rec_id, body, reported)
    return {"success": True, "message": "outcome recorded"}


@router.post("/feedback", response_model=FeedbackOut, summary="Submit feedback (W8)")
async def feedback(conn: ConnDep, body: FeedbackIn) -> dict[str, Any]:
    """Store structured feedback on a recommendation."""
    submitted = outcomes.parse_time(body.submittedAt)
    if submitted is None:
        raise HTTPException(422, detail="submittedAt must be an ISO 8601 time")
    feedback_id = await outcomes.add_feedback(conn, body, submitted)
    return {"success": True, "message": "feedback recorded", "feedbackId": feedback_id}


@router.get("/users/{hashed_user_id}/stats", summary="A user's trade stats (O18)")
async def user_stats(conn: ConnDep,
                     hashed_user_id: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
                     period: Period = "week") -> dict[str, Any]:
    """Profit, trades, win rate, best and worst flip, and the change from the period before."""
    return await outcomes.user_stats(conn, hashed_user_id, period)


@router.get("/feedback/analytics", summary="Feedback by type and item (O20)")
async def feedback_analytics(
    conn: ConnDep, period: Period = "week",
    item_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> dict[str, Any]:
    """How often each kind of feedback was given, and for which items."""
    return await outcomes.feedback_analytics(conn, period, item_id)
