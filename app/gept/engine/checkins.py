# ruff: noqa: N815  (the field names are the clients' contract: camelCase where they read it)
"""Check-ins on a trade (O22 guidance, O23 trade updates), derived from the W6 advice.

Both are other views of :func:`gept.engine.advice.advise`:

* **guidance** names the advice as the web UI's check-in does: ``wait`` → ``hold``,
  ``adjust_price`` → ``relist`` (``params.newPrice``), ``abort_retry`` → ``exit``,
  ``liquidate`` → ``sell_now``; the next check-in comes a quarter of the estimated time to
  fill from now, between 15 minutes and 4 hours (half that once the user reports the
  order more than half filled), and after 15 minutes whenever the advice is to act;
* a **trade update** is the advice of a sell order that needs acting on: ``ADJUST_PRICE``
  (``newSellPrice``) or ``SELL_NOW`` (``adjustedSellPrice``), with the alerts' urgency scale
  (high ≥ 0.85, medium ≥ 0.65); waiting is no update. The poll comes back after 15 s when an
  update is urgent, 30 s when there is any, 60 s otherwise.

Example:
    >>> advice = {"action": "adjust_price", "confidence": 0.7, "reasoning": "lower it",
    ...           "recommendations": {"adjust_price": {"suggested_price": 95,
    ...           "cost_difference": -50}, "wait": {"estimated_fill_time_minutes": 120}}}
    >>> guidance(advice, user_price=100)["params"]["newPrice"]
    95
    >>> trade_update(advice, "t1", sell_price=100, number=1)["type"]
    'ADJUST_PRICE'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gept.engine.webschemas import ActiveOrderIn

GUIDANCE = {"wait": "hold", "adjust_price": "relist", "abort_retry": "exit",
            "liquidate": "sell_now"}
MAX_TRADE_IDS = 20


def urgency(confidence: float) -> str:
    """The alerts' urgency scale."""
    return "high" if confidence >= 0.85 else "medium" if confidence >= 0.65 else "low"


def guidance(advice: dict[str, Any], *, user_price: int, progress: int = 0) -> dict[str, Any]:
    """The check-in guidance (O22) for one W6 advice."""
    action = GUIDANCE[advice["action"]]
    recs = advice["recommendations"]
    params = None
    if action == "relist" and recs.get("adjust_price"):
        new = int(recs["adjust_price"]["suggested_price"])
        params = {"newPrice": new, "priceDelta": abs(new - user_price),
                  "expectedSpeedup": "faster fill"}
    elif action == "sell_now" and recs.get("liquidate"):
        params = {"instantPrice": int(recs["liquidate"]["instant_price"])}
    to_fill = int((recs.get("wait") or {}).get("estimated_fill_time_minutes") or 60)
    quarter = to_fill // 4 if progress <= 50 else to_fill // 8
    minutes = 15 if action != "hold" else max(15, min(240, quarter))
    return {"action": action, "reason": advice["reasoning"],
            "confidence": advice["confidence"], "params": params,
            "next_check_in_minutes": minutes}


def trade_update(advice: dict[str, Any], trade_id: str, *, sell_price: int,
                 number: int) -> dict[str, Any] | None:
    """The update (O23) a sell order at ``sell_price`` needs, or None (keep waiting)."""
    recs = advice["recommendations"]
    confidence = float(advice["confidence"])
    base = {"id": f"update_{number:03d}", "tradeId": trade_id, "reason": advice["reasoning"],
            "confidence": confidence, "urgency": urgency(confidence)}
    if advice["action"] == "adjust_price" and recs.get("adjust_price"):
        adjust = recs["adjust_price"]
        return {**base, "type": "ADJUST_PRICE", "newSellPrice": int(adjust["suggested_price"]),
                "originalSellPrice": sell_price,
                "profitDelta": int(adjust.get("cost_difference") or 0)}
    if advice["action"] == "liquidate" and recs.get("liquidate"):
        return {**base, "type": "SELL_NOW",
                "adjustedSellPrice": int(recs["liquidate"]["instant_price"])}
    return None


def next_check_in(updates: list[dict[str, Any]]) -> int:
    """Seconds until the client should poll again."""
    if any(u["urgency"] == "high" for u in updates):
        return 15
    return 30 if updates else 60


class GuidanceIn(ActiveOrderIn):
    """A check-in on an active order (O22)."""

    reported_progress: int = Field(ge=0, le=100)


class GuidanceOut(BaseModel):
    """What to do at this check-in."""

    action: Literal["hold", "relist", "exit", "sell_now"]
    reason: str
    confidence: float = Field(ge=0, le=1)
    params: dict[str, Any] | None
    next_check_in_minutes: int = Field(ge=1)


class TradeUpdateOut(BaseModel):
    """One trade that needs acting on (O23)."""

    id: str
    tradeId: str
    type: Literal["ADJUST_PRICE", "SELL_NOW", "SWITCH_ITEM"]
    reason: str
    confidence: float = Field(ge=0, le=1)
    urgency: Literal["low", "medium", "high"]
    newSellPrice: int | None = None
    originalSellPrice: int | None = None
    profitDelta: int | None = None
    adjustedSellPrice: int | None = None


class TradeUpdatesOut(BaseModel):
    """The updates of the polled trades, and when to poll again."""

    updates: list[TradeUpdateOut]
    nextCheckIn: int = Field(ge=0, description="seconds until the next poll")
