"""The trade registry: every user's open trades, persisted in PostgreSQL (``engine_trades``).

Fed by the web app's trade events (W10); a restarted engine reads it back, so no open trade
is lost and nobody needs to be asked. When the registry is empty at start and the web app's
database (E3, a read-only DSN of ``active_trades``) or its resync URL (E2) is configured,
the registry is rebuilt from there.

Example:
    >>> async with pool.connection() as conn:                    # doctest: +SKIP
    ...     await record(conn, event, signature_hex, sent_at_ms)
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gept.engine.webschemas import TradeEventIn

log = logging.getLogger(__name__)
Conn = AsyncConnection[Any]

_STATUS = {"TRADE_COMPLETED": "completed", "TRADE_CANCELLED": "cancelled"}


class Replayed(Exception):
    """This signature was accepted before: the delivery is a replay."""


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """An open trade as the price-drop monitor needs it."""

    trade_id: str
    user_id: str
    item_id: int
    item_name: str
    buy_price: int
    sell_price: int
    quantity: int


def _model_id(value: object) -> str | None:
    return None if value is None else str(value)[:64]


async def record(conn: Conn, event: TradeEventIn, sig: str, sent_ms: int) -> None:
    """Apply one verified event, and remember its signature, in one transaction.

    Raises:
        Replayed: the signature was accepted before (nothing is changed).
    """
    p = event.payload
    digest = hashlib.sha256(sig.encode()).hexdigest()
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO engine_webhook_deliveries (signature_sha256, event_type, trade_id, "
            "sent_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (digest, event.eventType, event.tradeId,
             datetime.fromtimestamp(sent_ms / 1000, UTC)))
        if await cur.fetchone() is None:
            raise Replayed()
        status = _STATUS.get(event.eventType, "open")
        await conn.execute("""
            INSERT INTO engine_trades AS t (trade_id, user_id, item_id, item_name, buy_price,
                   sell_price, quantity, offset_pct, rec_id, model_id, expected_hours, status,
                   profit, closed_at)
            VALUES (%(trade)s, %(user)s, %(item)s, %(name)s, %(buy)s, %(sell)s, %(qty)s,
                    %(off)s, %(rec)s, %(model)s, %(hours)s, %(status)s, %(profit)s,
                    CASE WHEN %(status)s = 'open' THEN NULL ELSE now() END)
            ON CONFLICT (trade_id) DO UPDATE SET
                   item_id = excluded.item_id, item_name = excluded.item_name,
                   buy_price = excluded.buy_price, sell_price = excluded.sell_price,
                   quantity = excluded.quantity,
                   offset_pct = coalesce(excluded.offset_pct, t.offset_pct),
                   rec_id = coalesce(excluded.rec_id, t.rec_id),
                   model_id = coalesce(excluded.model_id, t.model_id),
                   expected_hours = coalesce(excluded.expected_hours, t.expected_hours),
                   status = CASE WHEN t.status = 'open' THEN excluded.status ELSE t.status END,
                   profit = coalesce(excluded.profit, t.profit),
                   closed_at = coalesce(t.closed_at, excluded.closed_at), updated_at = now()
             WHERE t.user_id = excluded.user_id""",
            {"trade": event.tradeId, "user": event.userId, "item": p.itemId,
             "name": p.itemName, "buy": p.buyPrice, "sell": p.sellPrice, "qty": p.quantity,
             "off": p.offsetPct, "rec": p.recId, "model": _model_id(p.modelId),
             "hours": p.expectedHours, "status": status, "profit": p.profit})


async def open_trades(conn: Conn) -> list[OpenTrade]:
    """Every open trade."""
    cur = await conn.execute(
        "SELECT trade_id, user_id, item_id, item_name, buy_price, sell_price, quantity "
        "FROM engine_trades WHERE status = 'open' ORDER BY created_at, trade_id")
    return [OpenTrade(*row) for row in await cur.fetchall()]


async def positions(conn: Conn) -> dict[int, frozenset[str]]:
    """Per item, the users with an open trade in it (for crowding control)."""
    cur = await conn.execute("SELECT item_id, array_agg(DISTINCT user_id) FROM engine_trades "
                             "WHERE status = 'open' GROUP BY item_id")
    return {int(i): frozenset(users) for i, users in await cur.fetchall()}


async def count(conn: Conn) -> dict[str, int]:
    """Trades per status."""
    cur = await conn.execute("SELECT status, count(*) FROM engine_trades GROUP BY status")
    return {s: int(n) for s, n in await cur.fetchall()}


async def _insert_resynced(conn: Conn, rows: list[dict[str, Any]], source: str) -> int:
    n = 0
    async with conn.transaction():
        for r in rows:
            cur = await conn.execute("""
                INSERT INTO engine_trades (trade_id, user_id, item_id, item_name, buy_price,
                       sell_price, quantity, rec_id, model_id, expected_hours, source)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (trade_id) DO NOTHING RETURNING 1""",
                (str(r["id"]), str(r["user_id"]), int(r["item_id"]), str(r["item_name"]),
                 int(r["buy_price"]), int(r["sell_price"]), int(r["quantity"]),
                 r.get("rec_id"), _model_id(r.get("model_id")), r.get("expected_hours"),
                 source))
            n += 1 if await cur.fetchone() is not None else 0
    return n


async def resync_from_database(conn: Conn, users_dsn: str) -> int:
    """Copy the web app's ``active_trades`` (read-only DSN) into an empty registry (E3)."""
    async with await psycopg.AsyncConnection.connect(users_dsn, connect_timeout=5) as web:
        await web.set_read_only(True)
        cur = web.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT id, user_id, item_id, item_name, buy_price, sell_price, quantity, rec_id, "
            "model_id, expected_hours, created_at FROM active_trades")
        rows = await cur.fetchall()
    return await _insert_resynced(conn, rows, "resync-db")


async def resync_from_web(url: str, secret: str) -> int:
    """Ask the web app to re-send TRADE_CREATED for every active trade (E2).

    Returns the web app's ``data.dispatched`` (the events arrive through the webhook).
    """
    async with httpx.AsyncClient(timeout=10.0) as client:
        resp = await client.post(url, headers={"Authorization": f"Bearer {secret}",
                                               "X-Gept-Webhook-Secret": secret})
        resp.raise_for_status()
        data = resp.json().get("data") or {}
    return int(data.get("dispatched") or 0)


async def resync_if_empty(conn: Conn, *, users_dsn: str | None, resync_url: str | None,
                          secret: str | None) -> str:
    """Rebuild an empty registry from the web app; say what was done."""
    cur = await conn.execute("SELECT count(*) FROM engine_trades")
    row = await cur.fetchone()
    if row is not None and row[0] > 0:
        return "registry not empty"
    if users_dsn:
        try:
            return f"resynced {await resync_from_database(conn, users_dsn)} from active_trades"
        except (psycopg.Error, OSError) as exc:
            log.warning("resync from the web app's database failed: %s", exc)
    if resync_url and secret:
        try:
            return f"web app re-dispatched {await resync_from_web(resync_url, secret)} trades"
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("resync through %s failed: %s", resync_url, exc)
            return "resync failed"
    return "no resync source configured"
