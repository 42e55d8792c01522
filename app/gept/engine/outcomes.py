"""Trade outcomes and feedback (W7, W8): stored in ``engine_outcomes`` / ``engine_feedback``,
read back as per-user stats (O18) and feedback analytics (O20).

Periods: ``week`` (7 days), ``month`` (30 days) or ``all``; a week or month is compared to
the period before it.

Example:
    >>> async with pool.connection() as conn:                       # doctest: +SKIP
    ...     await user_stats(conn, "ab" * 32, "week")
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection

from gept.engine.recommend import iso
from gept.engine.webschemas import FeedbackIn, OutcomeIn

Conn = AsyncConnection[Any]
Period = Literal["week", "month", "all"]
PERIOD_DAYS = {"week": 7, "month": 30}
EPOCH = datetime(2013, 2, 22, tzinfo=UTC)  # Old School's release: before any trade


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time (``Z`` allowed) as UTC, or None when it is not one."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def add_outcome(conn: Conn, rec_id: str, o: OutcomeIn, reported: datetime) -> None:
    """Store one outcome."""
    await conn.execute(
        "INSERT INTO engine_outcomes (user_id, rec_id, item_id, item_name, offset_pct, "
        "buy_price, sell_price, quantity, actual_profit, reported_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (o.userId, rec_id, o.itemId, o.itemName, o.offsetPct, o.buyPrice, o.sellPrice,
         o.quantity, o.actualProfit, reported))


async def add_feedback(conn: Conn, f: FeedbackIn, submitted: datetime) -> int:
    """Store one feedback; its id."""
    cur = await conn.execute(
        "INSERT INTO engine_feedback (user_id, item_id, item_name, feedback_type, rec_id, "
        "offset_pct, side, notes, recommended_price, actual_price, submitted_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (f.userId, f.itemId, f.itemName, f.feedbackType, f.recId, f.offsetPct, f.side,
         f.notes, f.recommendedPrice, f.actualPrice, submitted))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def window(period: Period, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The period's ``(start, end)``."""
    end = now or datetime.now(UTC)
    days = PERIOD_DAYS.get(period)
    return (EPOCH if days is None else end - timedelta(days=days)), end


async def _summary(conn: Conn, user: str, start: datetime, end: datetime) -> dict[str, Any]:
    cur = await conn.execute("""
        SELECT coalesce(sum(actual_profit), 0)::bigint, count(*),
               coalesce(avg((actual_profit > 0)::int), 0)::float8,
               (SELECT json_build_object('itemName', item_name, 'profit', actual_profit)
                  FROM engine_outcomes WHERE user_id = %(u)s AND reported_at >= %(s)s
                   AND reported_at < %(e)s ORDER BY actual_profit DESC, id LIMIT 1),
               (SELECT json_build_object('itemName', item_name, 'profit', actual_profit)
                  FROM engine_outcomes WHERE user_id = %(u)s AND reported_at >= %(s)s
                   AND reported_at < %(e)s ORDER BY actual_profit, id LIMIT 1)
          FROM engine_outcomes
         WHERE user_id = %(u)s AND reported_at >= %(s)s AND reported_at < %(e)s""",
                             {"u": user, "s": start, "e": end})
    row = await cur.fetchone()
    assert row is not None
    return {"totalProfit": int(row[0]), "totalTrades": int(row[1]),
            "winRate": round(float(row[2]), 4), "bestFlip": row[3], "worstFlip": row[4]}


async def user_stats(conn: Conn, user: str, period: Period) -> dict[str, Any]:
    """The user's profit, trades, win rate, best and worst flip (O18)."""
    start, end = window(period)
    out = {"period": period, "startDate": iso(start), "endDate": iso(end),
           **await _summary(conn, user, start, end), "comparisonToPreviousPeriod": None}
    if period != "all":
        before = await _summary(conn, user, start - (end - start), start)
        out["comparisonToPreviousPeriod"] = {
            "profitDelta": out["totalProfit"] - before["totalProfit"],
            "winRateDelta": round(out["winRate"] - before["winRate"], 4)}
    return out


async def feedback_analytics(conn: Conn, period: Period, item_id: int | None
                             ) -> dict[str, Any]:
    """Feedback counts by type and the most mentioned items (O20)."""
    start, end = window(period)
    params = {"s": start, "e": end, "i": item_id}
    where = ("submitted_at >= %(s)s AND submitted_at < %(e)s "
             "AND (%(i)s::int IS NULL OR item_id = %(i)s)")
    cur = await conn.execute(f"SELECT feedback_type, count(*) FROM engine_feedback "
                             f"WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1", params)
    by_type = [(t, int(n)) for t, n in await cur.fetchall()]
    total = sum(n for _, n in by_type)
    cur = await conn.execute(f"SELECT item_id, max(item_name), count(*) FROM engine_feedback "
                             f"WHERE {where} GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT 10", params)
    top = [{"itemId": i, "itemName": n, "count": int(c)} for i, n, c in await cur.fetchall()]
    return {"period": period, "startDate": iso(start), "endDate": iso(end),
            "totalFeedback": total,
            "byType": [{"feedbackType": t, "count": n,
                        "percentage": round(n * 100 / total, 2) if total else 0.0}
                       for t, n in by_type],
            "topItems": top}
