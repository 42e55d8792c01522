"""The clients' contract (web-contract.md): each call sent as GePT's web app and Discord bot
send it, asserting on exactly the fields they read, with their types.

Runs against a real PostgreSQL holding simulator history, a trained ACTIVE model and the
predictions batch that model wrote through `gept infer`'s own code path.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from contract_calls import W1_FIELDS, WEB_USER, Kind, Param, items_of, web_w1
from engine_seed import API_KEY, HEADERS
from fastapi.testclient import TestClient

from gept.core.config import get_settings
from gept.engine.main import create_app

BOT_USER = hashlib.sha256(b"discord:1234").hexdigest()    # the bot's SHA-256
REC_ID = re.compile(r"^rec_\d+_\d{10}$")                 # what W8 accepts as a rec id


# -- W1: GET /api/v1/recommendations, as getRecommendations sends it ----------------------

def test_w1_is_a_bare_camelcase_array_with_every_field_the_web_reads(web: TestClient) -> None:
    resp = web_w1(web, max_offset_pct=0.015)
    recs = resp.json()
    hour = resp.headers["X-Gept-Batch-Time"][:13].replace("-", "").replace("T", "")
    assert isinstance(recs, list)
    assert recs, "a trained model's batch offers flips"
    for rec in recs:
        for name, kind in W1_FIELDS.items():
            assert isinstance(rec[name], kind), (name, rec[name])
        assert rec["confidence"] in ("high", "medium", "low")
        assert rec["fillConfidence"] in ("Strong", "Good", "Fair")
        assert rec["trend"] in ("Rising", "Stable", "Falling")
        assert REC_ID.match(rec["id"])
        assert rec["id"] == f"rec_{rec['itemId']}_{hour}"
        assert rec["capitalRequired"] == rec["quantity"] * rec["buyPrice"]
        assert rec["offsetPct"] <= 0.015 + 1e-9          # the conservative margin
    # Our freshness is in headers, where it breaks no shape.
    assert resp.headers["X-Gept-Stale"] == "false"
    assert float(resp.headers["X-Gept-Age-Seconds"]) < 600


def test_w1_margin_takes_effect(web: TestClient) -> None:
    conservative = web_w1(web, max_offset_pct=0.015, risk="high").json()
    aggressive = web_w1(web, min_offset_pct=0.0225, risk="high").json()
    assert all(r["offsetPct"] <= 0.015 + 1e-9 for r in conservative)
    assert all(r["offsetPct"] >= 0.0225 - 1e-9 for r in aggressive)
    assert aggressive, "high risk accepts a 2.25 % offset"


def test_w1_exclusions_by_item_and_by_rec_id(web: TestClient) -> None:
    first = web_w1(web).json()
    assert len(first) >= 2
    a, b = first[0], first[1]
    rest = web_w1(web, exclude_item_ids=str(a["itemId"]), exclude=b["id"]).json()
    assert {a["itemId"], b["itemId"]}.isdisjoint({r["itemId"] for r in rest})


def test_w1_use_beta_model_says_plainly_there_is_none(web: TestClient) -> None:
    resp = web_w1(web, use_beta_model="true")
    assert "no beta model" in resp.headers["X-Gept-Model"]
    assert resp.json() == web_w1(web).json()


def test_w1_use_beta_model_serves_the_beta_model(web: TestClient, ml_dsn: str) -> None:
    with psycopg.connect(ml_dsn) as conn:
        conn.execute("UPDATE model_registry SET metrics = metrics || '{\"beta\": true}' "
                     "WHERE status = 'ACTIVE'")
        row = conn.execute("SELECT id FROM model_registry WHERE status = 'ACTIVE'").fetchone()
    assert row is not None
    with TestClient(create_app(refresh_interval=0.2)) as restarted:  # reads the mark
        resp = web_w1(restarted, use_beta_model="true")
        assert resp.headers["X-Gept-Model"] == f"beta {row[0]}"
        assert resp.json()
        assert all(r["modelId"] == row[0] for r in resp.json())
        assert web_w1(restarted).headers["X-Gept-Model"] == "active"


def test_w1_variants_of_the_original(web: TestClient) -> None:
    meta = web_w1(web, include_metadata="true").json()
    assert isinstance(meta["recommendations"], list)
    assert meta["metadata"]["stale"] is False
    every = web_w1(web, return_all="true").json()
    assert every["total_count"] == len(every["recommendations"])
    assert every["total_count"] >= len(web_w1(web).json())


@pytest.mark.parametrize("query", ["capital=999", "capital=1e400", "capital=100000&slots=0",
                                   "capital=100000&slots=9", "capital=100000&style=turbo",
                                   "capital=100000&max_offset_pct=0.5",
                                   "capital=100000&exclude_item_ids=1,x"])
def test_w1_bad_parameters_are_422_even_without_predictions(
        db_dsn: str, monkeypatch: pytest.MonkeyPatch, query: str) -> None:
    monkeypatch.setenv("GEPT_ENGINE_API_KEY", API_KEY)
    get_settings.cache_clear()
    with TestClient(create_app(refresh_interval=0.2)) as client:   # no batch at all
        assert client.get(f"/api/v1/recommendations?{query}", headers=HEADERS
                          ).status_code == 422
        assert client.get("/api/v1/recommendations?capital=100000", headers=HEADERS
                          ).status_code == 503
        assert client.post("/api/v1/opportunities", json={"limit": 0}, headers=HEADERS
                           ).status_code == 422
        assert client.post("/api/v1/recommendations/update", json={"item_id": 0},
                           headers=HEADERS).status_code == 422
        assert client.get("/api/v1/recommendations/item/1?capital=5", headers=HEADERS
                          ).status_code == 422
        assert client.post("/api/v1/opportunities", json={}, headers=HEADERS
                           ).status_code == 503


def test_unlimited_tier_may_ask_for_twenty_slots(web: TestClient) -> None:
    resp = web.get("/api/v1/recommendations", headers=HEADERS,
                   params={"capital": 10**9, "slots": 20, "user_tier": "unlimited"})
    assert resp.status_code == 200


# -- W2: GET /api/v1/recommendations/item/{id} ------------------------------------------

def test_w2_single_object_or_404_not_recommended(web: TestClient) -> None:
    rec = web_w1(web).json()[0]
    params: dict[str, Param] = {"user_id": WEB_USER, "capital": 1_000_000_000,
                                "style": "hybrid", "risk": "medium"}
    resp = web.get(f"/api/v1/recommendations/item/{rec['itemId']}", params=params,
                   headers=HEADERS)
    assert resp.status_code == 200
    one = resp.json()
    assert isinstance(one, dict)
    for name, kind in W1_FIELDS.items():
        assert isinstance(one[name], kind), name
    assert one["itemId"] == rec["itemId"]
    missing = web.get("/api/v1/recommendations/item/999999", params=params, headers=HEADERS)
    assert missing.status_code == 404
    assert "not recommended" in missing.json()["detail"]


# -- The bot: recommendations by SHA-256 user, by id, search ----------------------------

def test_bot_calls(web: TestClient) -> None:
    recs = web.get("/api/v1/recommendations", headers=HEADERS,
                   params={"capital": 50_000_000, "user_id": BOT_USER}).json()
    assert recs
    again = web.get(f"/api/v1/recommendations/{recs[0]['id']}", headers=HEADERS)
    assert again.status_code == 200
    assert again.json()["itemId"] == recs[0]["itemId"]
    found = web.get("/api/v1/items/search", params={"q": recs[0]["item"][:3], "limit": 10},
                    headers=HEADERS).json()
    assert isinstance(found, list)
    assert {"itemId", "name", "category"} <= set(found[0])


# -- W3: items search -------------------------------------------------------------------

def test_w3_search_is_an_array_with_the_ui_fields(web: TestClient) -> None:
    name = items_of(web)[0]["item_name"]
    resp = web.get("/api/v1/items/search", params={"q": name, "limit": 15}, headers=HEADERS)
    assert resp.status_code == 200
    hits = resp.json()
    assert hits[0]["name"] == name
    for hit in hits:
        assert isinstance(hit["id"], int)
        assert hit["id"] == hit["itemId"]
        assert isinstance(hit["name"], str)
        assert hit["icon"].startswith("https://oldschool.runescape.wiki/images/")
        assert hit["acronym"] is None or isinstance(hit["acronym"], str)
    assert web.get("/api/v1/items/search", params={"q": "a", "limit": 50},
                   headers=HEADERS).status_code == 200          # the web route allows 50


# -- W4: price history -------------------------------------------------------------------

def test_w4_hourly_high_low_and_trend(web: TestClient) -> None:
    item = items_of(web)[0]["item_id"]
    resp = web.get(f"/api/v1/items/{item}/price-history?hours=24", headers=HEADERS)
    assert resp.status_code == 200
    body = resp.json()
    assert body["trend"] in ("Rising", "Falling", "Stable")
    assert 20 <= len(body["history"]) <= 25                 # hourly buckets, not 5-minute
    hours = [datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00"))
             for p in body["history"]]
    assert all(h.minute == 0 for h in hours)
    for p in body["history"]:
        assert isinstance(p["high"], int)
        assert isinstance(p["low"], int)
        assert p["high"] >= p["low"] > 0
    assert isinstance(body["change24h"], float)


# -- W5: opportunities --------------------------------------------------------------------

W5_FIELDS: dict[str, Kind] = {
    "id": str, "item_id": int, "item_name": str, "icon_url": str, "buy_price": int,
    "sell_price": int, "offset_pct": float, "quantity": int, "capital_required": int,
    "expected_profit": int, "expected_hours": float, "confidence": str,
    "fill_probability": float, "volume_24h": (int, type(None)), "trend": str,
    "why_chips": list, "category": str, "model_id": str}


def test_w5_the_home_page_body_and_every_field(web: TestClient) -> None:
    body = {"limit": 30, "offset": 0, "use_beta_model": False}
    resp = web.post("/api/v1/opportunities", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert isinstance(page["total"], int)
    assert isinstance(page["has_more"], bool)
    assert page["items"]
    for opp in page["items"]:
        for name, kind in W5_FIELDS.items():
            assert isinstance(opp[name], kind), (name, opp[name])
        assert opp["id"] == f"opp-{opp['item_id']}"
        assert opp["icon_url"].startswith("https://oldschool.runescape.wiki/images/")
        for chip in opp["why_chips"]:
            assert set(chip) == {"icon", "label", "type"}
            assert chip["type"] in ("positive", "neutral", "negative")


def test_w5_filters_and_pagination(web: TestClient) -> None:
    every = items_of(web)
    assert len(every) >= 3
    page1 = web.post("/api/v1/opportunities", json={"limit": 2}, headers=HEADERS).json()
    page2 = web.post("/api/v1/opportunities", json={"limit": 2, "offset": 2},
                     headers=HEADERS).json()
    assert page1["total"] == len(every)
    assert page1["has_more"] is True
    assert [o["item_id"] for o in page1["items"] + page2["items"]] == \
        [o["item_id"] for o in every[:4]]
    median = sorted(o["expected_profit"] for o in every)[len(every) // 2]
    rich = web.post("/api/v1/opportunities", json={"min_profit": median},
                    headers=HEADERS).json()["items"]
    assert rich
    assert all(o["expected_profit"] >= median for o in rich)
    level = every[0]["confidence"]
    same = web.post("/api/v1/opportunities", json={"confidence": [level]},
                    headers=HEADERS).json()["items"]
    assert same
    assert all(o["confidence"] == level for o in same)
    quick = web.post("/api/v1/opportunities", json={"max_hours": 4},
                     headers=HEADERS).json()["items"]
    assert all(o["expected_hours"] <= 4 for o in quick)
    cheap = web.post("/api/v1/opportunities", json={"max_capital": 50_000},
                     headers=HEADERS).json()["items"]
    assert all(o["capital_required"] <= 50_000 for o in cheap)
    category = every[0]["category"]
    only = web.post("/api/v1/opportunities", json={"categories": [category]},
                    headers=HEADERS).json()["items"]
    assert only
    assert all(o["category"] == category for o in only)


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": 201}, {"offset": -1},
                                  {"confidence": ["certain"]}, {"min_profit": "lots"}])
def test_w5_bad_filters_are_422(web: TestClient, body: dict[str, object]) -> None:
    assert web.post("/api/v1/opportunities", json=body, headers=HEADERS).status_code == 422


# -- W6: price alerts on open trades --------------------------------------------------------

def test_w6_update_advice_as_the_trades_page_reads_it(web: TestClient) -> None:
    opp = items_of(web)[0]
    body = {"item_id": opp["item_id"], "order_type": "sell",
            "user_price": opp["sell_price"] * 2, "quantity": opp["quantity"],
            "time_elapsed_minutes": 60, "use_beta_model": False, "model_id": opp["model_id"],
            "buy_price": opp["buy_price"], "expected_hours": int(opp["expected_hours"])}
    resp = web.post("/api/v1/recommendations/update", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    advice = resp.json()
    assert advice["action"] in ("adjust_price", "wait", "abort_retry", "liquidate")
    assert 0 <= advice["confidence"] <= 1
    assert isinstance(advice["reasoning"], str)
    # Twice the predicted sell price will not fill: lower it, to a price that pays.
    assert advice["action"] == "adjust_price"
    suggested = advice["recommendations"]["adjust_price"]["suggested_price"]
    assert opp["buy_price"] < suggested < body["user_price"]
    assert isinstance(advice["recommendations"]["liquidate"]["instant_price"], int)
    fine = web.post("/api/v1/recommendations/update", headers=HEADERS,
                    json={**body, "user_price": opp["buy_price"]}).json()
    assert fine["action"] == "wait"


def test_w6_bad_body_is_422(web: TestClient) -> None:
    resp = web.post("/api/v1/recommendations/update", headers=HEADERS,
                    json={"item_id": 1, "order_type": "hold", "user_price": 0})
    assert resp.status_code == 422


# -- W7, W8, O18, O20: outcomes and feedback --------------------------------------------------

def test_w7_w8_outcome_and_feedback_are_stored_and_summarized(web: TestClient,
                                                              ml_dsn: str) -> None:
    user = hashlib.sha256(b"web-user-1").hexdigest()
    rec = web_w1(web).json()[0]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    outcome = {"userId": user, "itemId": rec["itemId"], "itemName": rec["item"],
               "recId": rec["id"], "offsetPct": rec["offsetPct"], "buyPrice": rec["buyPrice"],
               "sellPrice": rec["sellPrice"], "quantity": 3, "actualProfit": 1200,
               "reportedAt": now}
    assert web.post(f"/api/v1/recommendations/{rec['id']}/outcome", json=outcome,
                    headers=HEADERS).is_success
    assert web.post(f"/api/v1/recommendations/{rec['id']}/outcome", headers=HEADERS,
                    json={**outcome, "actualProfit": -300, "itemName": "Loser"}).is_success
    feedback = {"userId": user, "itemId": rec["itemId"], "itemName": rec["item"],
                "recId": rec["id"], "offsetPct": rec["offsetPct"],
                "feedbackType": "did_not_fill", "side": "buy", "notes": "auto:cancelled",
                "recommendedPrice": rec["buyPrice"], "actualPrice": rec["buyPrice"] + 1,
                "submittedAt": now}
    resp = web.post("/api/v1/feedback", json=feedback, headers=HEADERS)
    assert resp.is_success
    assert isinstance(resp.json()["feedbackId"], int)
    stats = web.get(f"/api/v1/users/{user}/stats", params={"period": "week"},
                    headers=HEADERS).json()
    assert (stats["totalProfit"], stats["totalTrades"], stats["winRate"]) == (900, 2, 0.5)
    assert stats["bestFlip"] == {"itemName": rec["item"], "profit": 1200}
    assert stats["worstFlip"] == {"itemName": "Loser", "profit": -300}
    assert stats["comparisonToPreviousPeriod"] == {"profitDelta": 900, "winRateDelta": 0.5}
    analytics = web.get("/api/v1/feedback/analytics", headers=HEADERS).json()
    assert analytics["totalFeedback"] == 1
    assert analytics["byType"] == [{"feedbackType": "did_not_fill", "count": 1,
                                    "percentage": 100.0}]
    with psycopg.connect(ml_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM engine_outcomes").fetchone() == (2,)


def test_w7_w8_refuse_what_is_not_the_contract(web: TestClient) -> None:
    bad_user = {"userId": "not-a-sha", "itemId": 1, "itemName": "x", "recId": "rec_1_2026010100",
                "buyPrice": 1, "sellPrice": 2, "quantity": 1, "actualProfit": 1,
                "reportedAt": "2026-01-01T00:00:00Z"}
    assert web.post("/api/v1/recommendations/rec_1_2026010100/outcome", json=bad_user,
                    headers=HEADERS).status_code == 422
    assert web.post("/api/v1/feedback", headers=HEADERS, json={
        "userId": "a" * 64, "itemId": 1, "itemName": "x", "feedbackType": "meh",
        "submittedAt": "2026-01-01T00:00:00Z"}).status_code == 422


# -- W9 and the key ----------------------------------------------------------------------------

def test_w9_health_and_the_key_on_every_contract_route(web: TestClient) -> None:
    assert web.get("/api/v1/health", headers=HEADERS).is_success
    for method, path in [("GET", "/api/v1/recommendations?capital=100000"),
                         ("GET", "/api/v1/recommendations/item/1"),
                         ("GET", "/api/v1/items/search?q=a"),
                         ("GET", "/api/v1/items/1/price-history"),
                         ("POST", "/api/v1/opportunities"),
                         ("POST", "/api/v1/recommendations/update"),
                         ("POST", "/api/v1/recommendations/rec_1_2026010100/outcome"),
                         ("POST", "/api/v1/feedback")]:
        resp = web.request(method, path, json={})
        assert resp.status_code == 401, (method, path)


def _w6(client: TestClient, opp: dict[str, Any], **extra: object) -> Any:
    body = {"item_id": opp["item_id"], "order_type": "sell",
            "user_price": opp["sell_price"] * 2, "quantity": opp["quantity"],
            "time_elapsed_minutes": 60, "use_beta_model": False, "model_id": None,
            "buy_price": opp["buy_price"], "expected_hours": int(opp["expected_hours"]),
            **extra}
    resp = client.post("/api/v1/recommendations/update", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    return resp


def test_w6_follows_the_trades_model_id_and_says_when_it_cannot(web: TestClient) -> None:
    opp = items_of(web)[0]
    served = opp["model_id"]
    assert isinstance(served, str)
    asked = _w6(web, opp, model_id=served)
    assert asked.headers["X-Gept-Model"] == f"model {served}"
    gone = _w6(web, opp, model_id="999999")          # a model retired since the trade
    assert gone.headers["X-Gept-Model"] == (
        f"active {served} (model 999999 has no predictions for item {opp['item_id']} "
        "in the newest batch)")
    assert gone.json() == asked.json()                # advice from the model that predicts it
    assert _w6(web, opp).headers["X-Gept-Model"] == f"active {served}"


def test_w6_use_beta_model_says_plainly_there_is_none(web: TestClient) -> None:
    opp = items_of(web)[0]
    resp = _w6(web, opp, use_beta_model=True)
    assert resp.headers["X-Gept-Model"] == (
        f"active {opp['model_id']} (no beta model predicts item {opp['item_id']} "
        "in the newest batch)")
    assert resp.json() == _w6(web, opp).json()


def test_w6_use_beta_model_serves_a_model_marked_beta_at_once(web: TestClient,
                                                              ml_dsn: str) -> None:
    import time

    from gept.registry import beta

    opp = items_of(web)[0]
    model = int(opp["model_id"])

    def header_when(start: str) -> str:
        deadline = time.monotonic() + 10               # the engine refreshes every 0.2 s
        while True:
            got = str(_w6(web, opp, use_beta_model=True).headers["X-Gept-Model"])
            if got.startswith(start) or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    with psycopg.connect(ml_dsn, autocommit=True) as conn:
        assert beta.mark(conn, model, beta=True, reason="contract test").changed
    assert header_when(f"beta {model}") == f"beta {model}"       # no restart, no new batch
    w1 = web_w1(web, use_beta_model="true")
    assert w1.headers["X-Gept-Model"] == f"beta {model}"
    assert all(r["modelId"] == model for r in w1.json())
    with psycopg.connect(ml_dsn, autocommit=True) as conn:
        assert beta.mark(conn, model, beta=False).changed
    assert header_when(f"active {model} ").startswith(f"active {model} (no beta model")
    assert "no beta model" in web_w1(web, use_beta_model="true").headers["X-Gept-Model"]
