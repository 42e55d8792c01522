"""Trade webhooks (W10), the persistent trade registry, signed alerts (E1), resync (E3) and
crowding, against a real PostgreSQL and a stand-in for the web app's alerts endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from engine_seed import HEADERS, ClientFactory, Row
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gept.core.clock import align, utcnow
from gept.db import partitions
from gept.engine.alerts import Monitor
from gept.engine.cache import EngineState
from gept.engine.webhook import sign, verify
from gept.testing.pgserver import PgServer

SECRET = "webhook-secret-for-tests-0123456789"
USER = "user_2abc"                         # the web app's raw user id


class WebApp:
    """A stand-in for the web app's ``POST /api/webhooks/alerts``: verifies like the web."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    verify(SECRET, self.headers["X-Webhook-Timestamp"],
                           self.headers["X-Webhook-Signature"], raw, tolerance_seconds=300)
                except Exception:
                    outer.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                outer.received.append(json.loads(raw))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"success":true,"data":{"delivered":1,"queued":false}}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/webhooks/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webapp() -> Iterator[WebApp]:
    app = WebApp()
    yield app
    app.server.shutdown()


@pytest.fixture
def hooked(market: list[Row], webapp: WebApp, monkeypatch: pytest.MonkeyPatch,
           make_client: ClientFactory) -> TestClient:
    """An engine with webhooks and alerts configured (the monitor driven by the test)."""
    monkeypatch.setenv("GEPT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GEPT_WEB_ALERTS_URL", webapp.url)
    monkeypatch.setenv("GEPT_PRICE_DROP_MONITOR_INTERVAL", "0")
    monkeypatch.setenv("GEPT_ALERT_BACKOFF_SECONDS", "0.01")
    return make_client()


def event(kind: str = "TRADE_CREATED", trade: str = "trade-1", item: int = 102,
          buy: int = 1_500_000, sell: int = 1_560_000, user: str = USER) -> bytes:
    """A trade event as the web app's dispatchWebhook serializes it."""
    return json.dumps({
        "eventType": kind, "timestamp": "2026-12-01T10:00:00.000Z", "userId": user,
        "tradeId": trade, "payload": {
            "itemId": item, "itemName": "Abyssal whip", "buyPrice": buy, "sellPrice": sell,
            "offsetPct": 0.0125, "quantity": 2, "recId": "opp-102", "modelId": "1",
            "expectedHours": 4, "createdAt": "2026-12-01T10:00:00.000Z"}}).encode()


def post(client: TestClient, body: bytes, *, ts: str | None = None, sig: str | None = None,
         signed: bool = True) -> Any:
    headers = {"Content-Type": "application/json"}
    if signed:
        t, s = sign(SECRET, body)
        headers["X-Webhook-Timestamp"] = ts or t
        headers["X-Webhook-Signature"] = sig or s
    return client.post("/webhooks/trades", content=body, headers=headers)


def stored(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM engine_trades), "
                           "(SELECT count(*) FROM engine_webhook_deliveries)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def set_latest(dsn: str, item: int, high: int, low: int) -> None:
    """The 1-minute collector's newest price of an item."""
    ts = align(utcnow(), 60)
    with psycopg.connect(dsn) as conn:
        partitions.ensure(conn, "prices_latest_1m", ts)
        conn.execute("INSERT INTO prices_latest_1m (item_id, timestamp, high, low) "
                     "VALUES (%s, %s, %s, %s) ON CONFLICT (item_id, timestamp) DO UPDATE "
                     "SET high = excluded.high, low = excluded.low", (item, ts, high, low))


def tick(client: TestClient) -> int:
    assert client.portal is not None                    # a started engine
    assert isinstance(client.app, FastAPI)
    monitor: Monitor = client.app.state.monitor
    return client.portal.call(monitor.tick)


def test_a_signed_event_is_recorded_and_its_replay_refused(hooked: TestClient,
                                                          engine_env: str) -> None:
    body = event()
    ts, sig = sign(SECRET, body)
    first = post(hooked, body, ts=ts, sig=sig)
    assert first.status_code == 200, first.text
    assert first.json()["success"] is True
    assert stored(engine_env) == (1, 1)
    replay = post(hooked, body, ts=ts, sig=sig)
    assert replay.status_code == 401
    assert "replay" in replay.json()["detail"]
    assert stored(engine_env) == (1, 1)
    assert 'gept_engine_webhook_rejections_total{reason="replayed"} 1.0' in \
        hooked.get("/metrics").text


@pytest.mark.parametrize("how", ["unsigned", "stale", "future", "forged", "other-body",
                                 "garbage-timestamp"])
def test_unsigned_stale_or_forged_events_are_401_and_store_nothing(
        hooked: TestClient, engine_env: str, how: str) -> None:
    body = event()
    now = int(time.time() * 1000)
    if how == "unsigned":
        resp = post(hooked, body, signed=False)
    elif how in ("stale", "future"):
        ts = str(now - 10 * 60_000 if how == "stale" else now + 10 * 60_000)
        resp = post(hooked, body, ts=ts, sig=sign(SECRET, body, now_ms=int(ts))[1])
    elif how == "forged":
        resp = post(hooked, body, sig=sign("another-secret-0123456789abcdef", body)[1])
    elif how == "other-body":
        resp = post(hooked, body, sig=sign(SECRET, event(sell=1))[1])
    else:
        resp = post(hooked, body, ts="yesterday")
    assert resp.status_code == 401, resp.text
    assert stored(engine_env) == (0, 0)


def test_no_api_key_is_needed_and_a_key_is_no_substitute(hooked: TestClient,
                                                         engine_env: str) -> None:
    resp = hooked.post("/webhooks/trades", content=event(),
                       headers={**HEADERS, "Content-Type": "application/json"})
    assert resp.status_code == 401
    assert stored(engine_env) == (0, 0)


def test_bodies_over_the_limit_are_413_and_store_nothing(hooked: TestClient,
                                                        engine_env: str) -> None:
    big = event()[:-1] + b', "padding": "' + b"x" * 70_000 + b'"}'
    assert post(hooked, big).status_code == 413
    assert hooked.post("/api/v1/opportunities", content=big, headers=HEADERS
                       ).status_code == 413
    assert stored(engine_env) == (0, 0)


def test_webhooks_are_503_when_no_secret_is_configured(market: list[Row],
                                                      make_client: ClientFactory) -> None:
    client = make_client()
    assert post(client, event()).status_code == 503


def test_trade_lifecycle_and_the_registry_survives_a_restart(
        hooked: TestClient, engine_env: str, make_client: ClientFactory) -> None:
    assert post(hooked, event()).status_code == 200
    assert post(hooked, event("TRADE_UPDATED", sell=1_580_000)).status_code == 200
    assert post(hooked, event(trade="trade-2", item=101, buy=100, sell=104)).status_code == 200
    assert post(hooked, event("TRADE_COMPLETED", trade="trade-2", item=101, buy=100,
                              sell=104)).status_code == 200
    restarted = make_client()        # a new engine process: nothing in memory
    with psycopg.connect(engine_env) as conn:
        rows = conn.execute("SELECT trade_id, status, sell_price FROM engine_trades "
                            "ORDER BY trade_id").fetchall()
    assert rows == [("trade-1", "open", 1_580_000), ("trade-2", "completed", 104)]
    assert restarted.portal is not None
    positions = restarted.portal.call(_positions, restarted)
    assert positions == {102: frozenset({USER})}


async def _positions(client: TestClient) -> dict[int, frozenset[str]]:
    from gept.engine import trades
    assert isinstance(client.app, FastAPI)
    engine: EngineState = client.app.state.engine
    async with engine.pool.connection() as conn:
        return await trades.positions(conn)


def test_a_price_drop_sends_one_signed_alert_even_across_restarts(
        hooked: TestClient, webapp: WebApp, engine_env: str,
        make_client: ClientFactory) -> None:
    assert post(hooked, event(buy=1_500_000, sell=1_700_000)).status_code == 200
    set_latest(engine_env, 102, high=1_650_000, low=1_640_000)
    assert tick(hooked) == 1
    assert tick(hooked) == 0
    set_latest(engine_env, 102, high=1_640_000, low=1_630_000)    # the market moves on
    assert tick(hooked) == 0
    restarted = make_client()
    assert tick(restarted) == 0
    assert webapp.refused == 0
    assert len(webapp.received) == 1
    (got,) = webapp.received
    assert got["userId"] == USER
    alert = got["alert"]
    assert alert["type"] == "ADJUST_PRICE"
    assert alert["tradeId"] == "trade-1"
    assert alert["newSellPrice"] == 1_650_000
    assert alert["id"]
    assert alert["reason"]
    assert alert["urgency"] in ("low", "medium", "high")
    # A deeper fall, below what covers the buy price: one SELL_NOW, also once.
    set_latest(engine_env, 102, high=1_400_000, low=1_390_000)
    assert tick(restarted) == 1
    assert tick(restarted) == 0
    assert [a["alert"]["type"] for a in webapp.received] == ["ADJUST_PRICE", "SELL_NOW"]
    assert webapp.received[1]["alert"]["adjustedSellPrice"] == 1_390_000
    # Closed trades get no alerts.
    assert post(restarted, event("TRADE_CANCELLED", sell=1_700_000)).status_code == 200
    set_latest(engine_env, 102, high=1_300_000, low=1_290_000)
    assert tick(restarted) == 0


def test_alert_delivery_retries_with_backoff(hooked: TestClient, webapp: WebApp,
                                             engine_env: str) -> None:
    webapp.fail_first = 2
    assert post(hooked, event(buy=1_500_000, sell=1_700_000)).status_code == 200
    set_latest(engine_env, 102, high=1_650_000, low=1_640_000)
    assert tick(hooked) == 1
    assert len(webapp.received) == 1
    with psycopg.connect(engine_env) as conn:
        assert conn.execute("SELECT status, attempts FROM engine_alerts").fetchall() == \
            [("sent", 3)]
    text = hooked.get("/metrics").text
    assert 'gept_engine_alert_deliveries_total{result="retry"} 2.0' in text
    assert 'gept_engine_alert_deliveries_total{result="sent"} 1.0' in text


def test_an_unreachable_web_app_fails_the_alert_without_resending_it(
        market: list[Row], monkeypatch: pytest.MonkeyPatch, engine_env: str,
        make_client: ClientFactory) -> None:
    monkeypatch.setenv("GEPT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GEPT_WEB_ALERTS_URL", "http://127.0.0.1:9/api/webhooks/alerts")
    monkeypatch.setenv("GEPT_PRICE_DROP_MONITOR_INTERVAL", "0")
    monkeypatch.setenv("GEPT_ALERT_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("GEPT_ALERT_RETRIES", "2")
    client = make_client()
    assert post(client, event(buy=1_500_000, sell=1_700_000)).status_code == 200
    set_latest(engine_env, 102, high=1_650_000, low=1_640_000)
    assert tick(client) == 0
    with psycopg.connect(engine_env) as conn:
        status = conn.execute("SELECT status, attempts, last_error IS NOT NULL "
                              "FROM engine_alerts").fetchall()
    assert status == [("failed", 3, True)]
    assert 'gept_engine_alert_deliveries_total{result="failed"} 1.0' in client.get(
        "/metrics").text


def test_an_empty_registry_is_rebuilt_from_the_web_apps_active_trades(
        market: list[Row], pg_server: PgServer, monkeypatch: pytest.MonkeyPatch,
        engine_env: str, make_client: ClientFactory) -> None:
    neon = pg_server.create_database(f"neon_{time.monotonic_ns()}")   # a stand-in for Neon
    with psycopg.connect(neon) as conn:
        conn.execute("""CREATE TABLE active_trades (id TEXT PRIMARY KEY, user_id TEXT,
            item_id INTEGER, item_name TEXT, buy_price BIGINT, sell_price BIGINT,
            quantity INTEGER, rec_id TEXT, model_id TEXT, expected_hours INTEGER,
            created_at TIMESTAMPTZ DEFAULT now(), phase TEXT)""")
        conn.execute("INSERT INTO active_trades (id, user_id, item_id, item_name, buy_price, "
                     "sell_price, quantity, rec_id, model_id, expected_hours, phase) VALUES "
                     "('t-9', 'u-9', 102, 'Abyssal whip', 1500000, 1560000, 1, 'opp-102', "
                     "'1', 4, 'buying')")
    monkeypatch.setenv("GEPT_WEB_USERS_DSN", neon)
    make_client()
    with psycopg.connect(engine_env) as conn:
        rows = conn.execute("SELECT trade_id, user_id, source FROM engine_trades").fetchall()
    assert rows == [("t-9", "u-9", "resync-db")]
    make_client()                                       # not empty: nothing copied again
    with psycopg.connect(engine_env) as conn:
        assert conn.execute("SELECT count(*) FROM engine_trades").fetchone() == (1,)


def test_crowding_keeps_many_users_out_of_one_item(market: list[Row],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   make_client: ClientFactory) -> None:
    monkeypatch.setenv("GEPT_CROWDING_LIMIT", "1")
    client = make_client()
    params: dict[str, str | int] = {"capital": 500_000_000, "style": "passive", "risk": "high",
                                    "slots": 1}

    def first_item(user: str) -> int:
        recs = client.get("/api/v1/recommendations", params={**params, "user_id": user},
                          headers=HEADERS).json()
        return int(recs[0]["itemId"])

    alice = first_item("alice")
    assert first_item("alice") == alice        # her own item stays hers
    assert first_item("bob") != alice          # bob is sent elsewhere
    anonymous = client.get("/api/v1/recommendations", params=params, headers=HEADERS).json()
    assert anonymous[0]["itemId"] == alice     # no user id: not tracked, not limited


def test_the_signature_is_the_web_apps_hmac() -> None:
    # The web app: createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
    import hashlib
    import hmac
    body = b'{"x":1}'
    ts, sig = sign(SECRET, body, now_ms=1_764_000_000_000)
    assert ts == "1764000000000"
    assert sig == hmac.new(SECRET.encode(), b"1764000000000." + body,
                           hashlib.sha256).hexdigest()


def test_without_a_database_dsn_the_web_app_is_asked_to_resend_its_trades(
        market: list[Row], monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory) -> None:
    asked: list[dict[str, str]] = []

    class Resync(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"success": true, "data": {"dispatched": 2}}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Resync)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("GEPT_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("GEPT_PRICE_DROP_MONITOR_INTERVAL", "0")
        monkeypatch.setenv("GEPT_WEB_RESYNC_URL",
                           f"http://127.0.0.1:{server.server_address[1]}/api/trades/resync")
        make_client()
    finally:
        server.shutdown()
    assert len(asked) == 1
    assert asked[0]["authorization"] == f"Bearer {SECRET}"
    assert asked[0]["x-gept-webhook-secret"] == SECRET
