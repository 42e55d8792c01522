"""Advice on an active order (W6, O21): adjust the price, wait, abort and retry, liquidate.

Computed from the item's predictions in the newest batch (every window and offset, with the
prices current when the batch was made) and the order. The rules, in order:

1. The fill probability at the user's price is read off the predictions of the window
   closest to the time the order has left (``expected_hours`` minus the time elapsed): the
   best probability among configurations at least as good for the user as that price
   (a sell at or above it, a buy at or below it); an order beyond every prediction's price
   is scaled down by how far it is beyond. A price the market already crosses (a sell at
   or below the current high, a buy at or above the current low) fills with 0.9.
2. ``wait`` when that probability is at least 0.5.
3. ``adjust_price`` when another price of that window fills at least 0.15 more likely and,
   for a sell, still covers the buy price after GE tax.
4. ``liquidate`` (a sell) or ``abort_retry`` (a buy) when the order is overdue (more than
   1.5 times its expected hours, 4 h when not given) and no adjustment helps.
5. Otherwise ``wait``, with the low probability as its confidence.

Example:
    >>> rows = [{"hour_offset": 4, "offset_pct": 0.0125, "fill_probability": 0.6,
    ...          "buy_price": 98, "sell_price": 102, "current_high": 101,
    ...          "current_low": 99, "item_name": "X", "expected_value": 0.01, "model_id": 1}]
    >>> advise(Order("sell", user_price=110, quantity=10, elapsed_minutes=30,
    ...              buy_price=95, expected_hours=4), rows, alternatives=[])["action"]
    'adjust_price'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gept.market.tax import TAX_CAP_PER_ITEM, TAX_FREE_BELOW, tax_per_item

MARKET_FILL = 0.9
WAIT_AT = 0.5
BETTER_BY = 0.15
OVERDUE = 1.5
DEFAULT_HOURS = 4


@dataclass(frozen=True)
class Order:
    """The order being evaluated."""

    order_type: Literal["buy", "sell"]
    user_price: int
    quantity: int
    elapsed_minutes: int
    buy_price: int | None = None
    expected_hours: int | None = None


def _window(rows: Sequence[dict[str, Any]], hours_left: float) -> list[dict[str, Any]]:
    windows = sorted({r["hour_offset"] for r in rows})
    chosen = next((w for w in windows if w >= hours_left), windows[-1])
    return [r for r in rows if r["hour_offset"] == chosen]


def fill_at(order: Order, window: Sequence[dict[str, Any]]) -> float:
    """The fill probability of the order's price in this window (rule 1)."""
    sell = order.order_type == "sell"
    price = order.user_price
    market = window[0]["current_high"] if sell else window[0]["current_low"]
    if market is not None and (price <= market if sell else price >= market):
        return MARKET_FILL
    side = "sell_price" if sell else "buy_price"
    good = [r["fill_probability"] for r in window
            if (r[side] >= price if sell else r[side] <= price)]
    if good:
        return float(max(good))
    edge = max(window, key=lambda r: r[side]) if sell else min(window, key=lambda r: r[side])
    ratio = edge[side] / price if sell else price / edge[side]
    return float(max(0.0, min(1.0, edge["fill_probability"] * ratio ** 8)))


def break_even(buy_price: int) -> int:
    """The lowest sell price that returns the buy price after GE tax.

    Example:
        >>> [break_even(p) for p in (40, 100, 1_500_000, 300_000_000)]
        [40, 102, 1530612, 305000000]
    """
    # sell - floor(sell * 2 / 100) is non-decreasing in sell: start just under the exact
    # answer of the uncapped tax (or the capped one) and step up a few gp.
    if buy_price < TAX_FREE_BELOW:
        return buy_price
    guess = min(buy_price * 100 // 98, buy_price + TAX_CAP_PER_ITEM)
    price = max(buy_price, guess - 2)
    while price - tax_per_item(price) < buy_price:
        price += 1
    return price


def advise(order: Order, rows: Sequence[dict[str, Any]],
           alternatives: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The OrderUpdateResponse for ``order`` given the item's prediction rows."""
    hours = order.expected_hours or DEFAULT_HOURS
    hours_left = max(1.0, hours - order.elapsed_minutes / 60)
    window = _window(rows, hours_left)
    p_now = fill_at(order, window)
    sell = order.order_type == "sell"
    side = "sell_price" if sell else "buy_price"
    floor = break_even(order.buy_price) if sell and order.buy_price else 1
    options = [r for r in window if r[side] != order.user_price and r[side] >= floor]
    best = max(options, key=lambda r: (r["fill_probability"], -abs(r[side] - order.user_price)),
               default=None)
    recs: dict[str, Any] = {"adjust_price": None, "abort_retry": None, "liquidate": None,
                            "wait": {"estimated_fill_time_minutes":
                                     round(hours_left * 60 * (1 - min(p_now, 0.99)))}}
    if best is not None:
        recs["adjust_price"] = {
            "suggested_price": int(best[side]),
            "new_fill_probability": round(float(best["fill_probability"]), 4),
            "cost_difference": int((best[side] - order.user_price) * order.quantity)}
    instant = window[0]["current_low"] if sell else window[0]["current_high"]
    if sell and instant:
        cost = order.buy_price or order.user_price
        recs["liquidate"] = {"instant_price": int(instant),
                             "loss_amount": int(max(0, (cost - (instant - tax_per_item(instant)))
                                                    * order.quantity))}
    if not sell:
        recs["abort_retry"] = {"alternative_items": list(alternatives)}
    overdue = order.elapsed_minutes > hours * 60 * OVERDUE
    better = best is not None and best["fill_probability"] >= p_now + BETTER_BY
    if p_now >= WAIT_AT:
        action, confidence = "wait", p_now
        why = f"{round(p_now * 100)}% likely to fill at {order.user_price:,} gp; keep the order"
    elif better and best is not None:
        action, confidence = "adjust_price", float(best["fill_probability"])
        why = (f"only {round(p_now * 100)}% likely to fill at {order.user_price:,} gp; "
               f"{best[side]:,} gp is {round(confidence * 100)}% likely within "
               f"{best['hour_offset']} h")
    elif overdue and sell and recs["liquidate"] is not None:
        action, confidence = "liquidate", 0.7
        why = (f"overdue ({order.elapsed_minutes} min of {hours} h) and no price that covers "
               f"the buy fills better; sell now at {recs['liquidate']['instant_price']:,} gp")
    elif overdue and not sell and alternatives:
        action, confidence = "abort_retry", 0.7
        why = f"overdue ({order.elapsed_minutes} min of {hours} h); try another item"
    else:
        action, confidence = "wait", p_now
        why = f"{round(p_now * 100)}% likely to fill; no better price within the margin"
    return {"action": action, "confidence": round(min(1.0, max(0.0, confidence)), 4),
            "current_fill_probability": round(p_now, 4),
            "recommendations": recs, "reasoning": why}
