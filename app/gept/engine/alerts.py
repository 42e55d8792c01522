"""The price-drop monitor: signed alerts pushed to the web app (E1), each alert once.

Every ``GEPT_PRICE_DROP_MONITOR_INTERVAL`` seconds the monitor reads the open trades of the
registry and their items' latest prices (``prices_latest_1m``). A trade whose sell price
stands more than :data:`DROP` above the market's current high will not fill:

* ``ADJUST_PRICE`` with ``newSellPrice`` = the current high, when that still covers the buy
  price after GE tax;
* ``SELL_NOW`` with ``adjustedSellPrice`` = the current low (an instant sell), otherwise.

An alert is a row of ``engine_alerts`` whose id names the trade, the alert type and the
trade's sell price: it is inserted once and pushed until the web app accepts it (2xx) or
the retries run out, with exponential backoff. Prices moving on do not repeat it; a
restarted engine finds the row and never sends it again. A relisted trade (a new sell price
from TRADE_UPDATED) or a worse kind (SELL_NOW after ADJUST_PRICE) gets a new alert.

Example:
    >>> t = OpenTrade("t1", "u1", 4151, "Abyssal whip", 1_500_000, 1_700_000, 1)
    >>> alert_for(t, high=1_600_000, low=1_590_000)["type"]
    'ADJUST_PRICE'
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import httpx
import orjson
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from gept.engine import prices, trades
from gept.engine.advice import break_even
from gept.engine.background import stopped
from gept.engine.cache import DB_ERRORS
from gept.engine.crowding import Crowding
from gept.engine.metrics import EngineMetrics
from gept.engine.trades import OpenTrade
from gept.engine.webhook import sign
from gept.engine.websettings import WebSettings

log = logging.getLogger(__name__)

DROP = 0.02
"""A sell price this far above the market's high is not expected to fill."""
MONITOR_LOCK = 0x6765707461  # "gepta": one monitor pass at a time on a database


def _urgency(confidence: float) -> str:
    return "high" if confidence >= 0.85 else "medium" if confidence >= 0.65 else "low"


def alert_for(trade: OpenTrade, *, high: int | None, low: int | None) -> dict[str, Any] | None:
    """The alert a trade needs at these prices (None: its sell price is still fine)."""
    if high is None or high <= 0 or trade.sell_price <= high * (1 + DROP):
        return None
    drop = (trade.sell_price - high) / trade.sell_price
    if high >= break_even(trade.buy_price):
        kind, price = "ADJUST_PRICE", high
        confidence = min(0.95, 0.6 + drop * 5)
        why = (f"{trade.item_name} trades at {high:,} gp, {drop:.1%} under your sell price of "
               f"{trade.sell_price:,} gp; relist at {high:,} gp to fill")
        extra = {"newSellPrice": price, "originalSellPrice": trade.sell_price,
                 "profitDelta": (price - trade.sell_price) * trade.quantity}
    else:
        if low is None or low <= 0:
            return None
        kind, price = "SELL_NOW", low
        confidence = min(0.95, 0.7 + drop * 3)
        why = (f"{trade.item_name} fell to {high:,} gp, below what covers your buy price "
               f"after tax; sell now at {low:,} gp to limit the loss")
        extra = {"adjustedSellPrice": price, "originalSellPrice": trade.sell_price}
    # One alert per trade, kind and the trade's own sell price: the market moving on does
    # not repeat it; the user relisting (TRADE_UPDATED) or a worse kind makes a new one.
    alert_id = "alert_" + hashlib.sha256(f"{trade.trade_id}|{kind}|{trade.sell_price}".encode()
                                         ).hexdigest()[:24]
    return {"id": alert_id, "tradeId": trade.trade_id, "type": kind, "reason": why,
            "confidence": round(confidence, 3), "urgency": _urgency(confidence), **extra,
            "timestamp": int(time.time() * 1000)}


class Monitor:
    """The background price-drop monitor and alert dispatcher of one engine."""

    def __init__(self, pool: AsyncConnectionPool[Any], web: WebSettings, secret: str | None,
                 metrics: EngineMetrics, crowding: Crowding) -> None:
        self.pool = pool
        self.web = web
        self.secret = secret
        self.metrics = metrics
        self.crowding = crowding
        self.last_tick: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Pushing needs the alerts URL and the secret."""
        return bool(self.web.web_alerts_url and self.secret)

    async def tick(self) -> int:
        """One pass: create due alerts, push every pending one; returns alerts sent.

        One pass at a time across every worker and engine on the database (an advisory
        lock), so no alert is pushed twice.
        """
        async with self.pool.connection() as conn:
            self.crowding.set_positions(await trades.positions(conn))
            if not self.enabled:
                self.last_tick = time.time()
                return 0
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (MONITOR_LOCK,))
            row = await cur.fetchone()
            if row is None or not row[0]:
                return 0
            try:
                sent = await self._pass(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (MONITOR_LOCK,))
        self.last_tick = time.time()
        return sent

    async def _pass(self, conn: Any) -> int:
        open_ = await trades.open_trades(conn)
        latest = await prices.latest(conn, sorted({t.item_id for t in open_}))
        for t in open_:
            high, low = latest.get(t.item_id, (None, None))
            alert = alert_for(t, high=high, low=low)
            if alert is None:
                continue
            await conn.execute(
                "INSERT INTO engine_alerts (id, trade_id, user_id, alert_type, "
                "suggested_price, body) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (alert["id"], t.trade_id, t.user_id, alert["type"],
                 alert.get("newSellPrice") or alert.get("adjustedSellPrice"),
                 Jsonb({"userId": t.user_id, "alert": alert})))
        cur = await conn.execute(
            "SELECT a.id, a.body FROM engine_alerts a JOIN engine_trades t USING (trade_id) "
            "WHERE a.status = 'pending' AND t.status = 'open' ORDER BY a.created_at")
        pending = await cur.fetchall()
        sent = 0
        async with httpx.AsyncClient(timeout=5.0) as client:
            for alert_id, body in pending:
                status, attempts, error = await self._deliver(client, body)
                await conn.execute(
                    "UPDATE engine_alerts SET status = %s, attempts = attempts + %s, "
                    "last_error = %s, sent_at = CASE WHEN %s = 'sent' THEN now() END "
                    "WHERE id = %s", (status, attempts, error, status, alert_id))
                sent += status == "sent"
        return sent

    async def _deliver(self, client: httpx.AsyncClient,
                       body: dict[str, Any]) -> tuple[str, int, str | None]:
        """Push one alert with retries and backoff: (status, attempts, last error)."""
        assert self.secret is not None
        assert self.web.web_alerts_url is not None
        raw = orjson.dumps(body)
        error = ""
        attempt = 0
        for attempt in range(self.web.alert_retries + 1):
            if attempt:
                await asyncio.sleep(self.web.alert_backoff_seconds * 2 ** (attempt - 1))
            ts, sig = sign(self.secret, raw)  # a fresh timestamp on every attempt
            try:
                resp = await client.post(self.web.web_alerts_url, content=raw, headers={
                    "Content-Type": "application/json", "X-Webhook-Timestamp": ts,
                    "X-Webhook-Signature": sig})
                if resp.is_success:
                    self.metrics.alert_deliveries.labels("sent").inc()
                    return "sent", attempt + 1, None
                error = f"HTTP {resp.status_code}"
                if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
                    break  # the web app refused it; retrying the same body cannot help
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.metrics.alert_deliveries.labels("retry").inc()
        self.metrics.alert_deliveries.labels("failed").inc()
        log.warning("alert %s not delivered: %s", body["alert"]["id"], error)
        return "failed", attempt + 1, error

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except DB_ERRORS as exc:
                log.warning("price-drop monitor: database unreachable: %s", exc)
            except Exception:  # a bug must not kill the monitor; it is logged and retried
                log.exception("price-drop monitor tick failed")
            await asyncio.sleep(max(0.05, self.web.price_drop_monitor_interval))

    def lag_seconds(self) -> float:
        """Seconds since the last completed pass (+Inf before the first)."""
        return float("inf") if self.last_tick is None else time.time() - self.last_tick

    def start(self) -> None:
        """Run in the background (not when the interval is 0)."""
        if self.web.price_drop_monitor_interval > 0:
            self._task = asyncio.create_task(self._run(), name="gept-price-drop-monitor")

    async def stop(self) -> None:
        """Stop the background pass."""
        await stopped(self._task)
        self._task = None
