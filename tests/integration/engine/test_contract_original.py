"""The original engine's routes the clients may still reach (web-contract.md O11, O22-O28),
sent as the original documents them, on a trained model's real batch."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import psycopg
from contract_calls import W1_FIELDS, items_of, web_w1
from engine_seed import HEADERS
from fastapi.testclient import TestClient


def _sell(opp: dict[str, Any], price: int) -> dict[str, Any]:
    return {"item_id": opp["item_id"], "order_type": "sell", "user_price": price,
            "quantity": opp["quantity"], "time_elapsed_minutes": 60}


# -- O22: check-in guidance -------------------------------------------------------------------

def test_o22_guidance_relists_an_overpriced_sell_and_holds_a_fair_one(web: TestClient) -> None:
    opp = items_of(web)[0]
    high = web.post("/api/v1/guidance", headers=HEADERS,
                    json={**_sell(opp, opp["sell_price"] * 2), "reported_progress": 0})
    assert high.status_code == 200, high.text
    body = high.json()
    assert body["action"] == "relist"
    assert opp["buy_price"] < body["params"]["newPrice"] < opp["sell_price"] * 2
    assert body["params"]["priceDelta"] == opp["sell_price"] * 2 - body["params"]["newPrice"]
    assert body["next_check_in_minutes"] == 15                    # act now, look again soon
    fair = web.post("/api/v1/guidance", headers=HEADERS,
                    json={**_sell(opp, opp["buy_price"]), "reported_progress": 10}).json()
    assert fair["action"] == "hold"
    assert fair["params"] is None
    assert 15 <= fair["next_check_in_minutes"] <= 240
    assert isinstance(fair["reason"], str)
    assert 0 <= fair["confidence"] <= 1


def test_o22_bad_bodies_are_422_and_unknown_items_404(web: TestClient) -> None:
    opp = items_of(web)[0]
    for bad in ({**_sell(opp, 10), "reported_progress": 101}, {**_sell(opp, 10)},
                {**_sell(opp, 10), "order_type": "hold", "reported_progress": 0}):
        assert web.post("/api/v1/guidance", json=bad, headers=HEADERS).status_code == 422
    unknown = {**_sell(opp, 10), "item_id": 999_999, "reported_progress": 0}
    assert web.post("/api/v1/guidance", json=unknown, headers=HEADERS).status_code == 404


# -- O23: trade updates for polled ids --------------------------------------------------------

def test_o23_updates_for_registry_trades_and_recommendation_ids(web: TestClient,
                                                                ml_dsn: str) -> None:
    opp = items_of(web)[0]
    with psycopg.connect(ml_dsn, autocommit=True) as conn:   # what W10 stores
        for trade, sell in (("t-over", opp["sell_price"] * 2), ("t-fair", opp["buy_price"])):
            conn.execute(
                "INSERT INTO engine_trades (trade_id, user_id, item_id, item_name, buy_price, "
                "sell_price, quantity, expected_hours) VALUES (%s, 'u', %s, %s, %s, %s, 1, 4)",
                (trade, opp["item_id"], opp["item_name"], opp["buy_price"], sell))
    rec = web_w1(web).json()[0]
    resp = web.get("/api/v1/trades/updates", headers=HEADERS,
                   params={"tradeIds": f"t-over,t-fair,nope,{rec['id']}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    by_trade = {u["tradeId"]: u for u in body["updates"]}
    assert "t-fair" not in by_trade                               # priced to fill
    assert "nope" not in by_trade                                 # unknown
    over = by_trade["t-over"]
    assert over["type"] == "ADJUST_PRICE"
    assert over["originalSellPrice"] == opp["sell_price"] * 2
    assert opp["buy_price"] < over["newSellPrice"] < opp["sell_price"] * 2
    assert over["urgency"] in ("low", "medium", "high")
    assert over["id"].startswith("update_")
    assert body["nextCheckIn"] in (15, 30)
    quiet = web.get("/api/v1/trades/updates", params={"tradeIds": "t-fair"},
                    headers=HEADERS).json()
    assert quiet == {"updates": [], "nextCheckIn": 60}
    for bad in ("", ",,", ",".join(f"t{i}" for i in range(21))):
        assert web.get("/api/v1/trades/updates", params={"tradeIds": bad},
                       headers=HEADERS).status_code == 422, bad


# -- O24-O28: the older aliases ---------------------------------------------------------------

def test_o24_legacy_health_is_open(web: TestClient) -> None:
    resp = web.get("/health")
    assert resp.status_code == 200
    assert resp.json()["status"] in ("ok", "degraded")


def test_o25_legacy_recommendations_take_the_older_names(web: TestClient) -> None:
    first = web.get("/recommendations", headers=HEADERS,
                    params={"capital": 1_000_000_000, "count": 3, "user_hash": "k3x9a2"})
    assert first.status_code == 200, first.text
    recs = first.json()
    assert isinstance(recs, list)
    assert 0 < len(recs) <= 3
    for name, kind in W1_FIELDS.items():
        assert isinstance(recs[0][name], kind), name
    rest = web.get("/recommendations", headers=HEADERS, params={
        "capital": 1_000_000_000, "count": 12, "exclude_items": str(recs[0]["itemId"])}).json()
    assert recs[0]["itemId"] not in {r["itemId"] for r in rest}
    assert len(rest) > 3                                  # count up to 20 without a tier
    assert web.get("/recommendations", params={"capital": 10}, headers=HEADERS
                   ).status_code == 422
    assert web.get("/recommendations", params={"capital": 10_000_000}).status_code == 401


def test_o26_o27_legacy_item_and_search(web: TestClient) -> None:
    rec = web_w1(web).json()[0]
    one = web.get(f"/item/{rec['itemId']}", params={"capital": 1_000_000_000},
                  headers=HEADERS)
    assert one.status_code == 200
    assert one.json()["itemId"] == rec["itemId"]
    assert web.get("/item/999999", headers=HEADERS).status_code == 404
    hits = web.get("/search-items", params={"q": rec["item"], "limit": 25},
                   headers=HEADERS).json()
    assert hits[0]["itemId"] == rec["itemId"]
    assert web.get("/search-items", params={"q": "a", "limit": 26},
                   headers=HEADERS).status_code == 422


def test_o28_legacy_outcome_carries_the_rec_id_in_the_body(web: TestClient,
                                                           ml_dsn: str) -> None:
    rec = web_w1(web).json()[0]
    user = hashlib.sha256(b"legacy").hexdigest()
    body = {"rec_id": rec["id"], "userId": user, "itemId": rec["itemId"],
            "itemName": rec["item"], "buyPrice": rec["buyPrice"],
            "sellPrice": rec["sellPrice"], "quantity": 2, "actualProfit": 99,
            "reportedAt": datetime.now(UTC).isoformat()}
    resp = web.post("/trade-outcome", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    assert resp.json()["success"] is True
    with psycopg.connect(ml_dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM engine_outcomes WHERE rec_id = %s",
                              (rec["id"],)).fetchone()
    assert stored == (1,)
    assert web.post("/trade-outcome", json={**body, "userId": "short"},
                    headers=HEADERS).status_code == 422


# -- O11: by name --------------------------------------------------------------------------------

def test_o11_by_name_answers_w2_or_404_with_suggestions(web: TestClient) -> None:
    rec = web_w1(web).json()[0]
    params: dict[str, str | int] = {"capital": 1_000_000_000, "style": "hybrid", "risk": "medium"}
    found = web.get("/api/v1/recommendations/item", headers=HEADERS,
                    params={**params, "name": rec["item"]})
    assert found.status_code == 200, found.text
    assert found.json()["itemId"] == rec["itemId"]
    nothing = web.get("/api/v1/recommendations/item", headers=HEADERS,
                      params={**params, "name": "zzzz-no-such-item"})
    assert nothing.status_code == 404
    assert "X-Suggestions" in nothing.headers
    assert web.get("/api/v1/recommendations/item", headers=HEADERS,
                   params={"name": ""}).status_code == 422
