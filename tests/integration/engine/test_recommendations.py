"""Recommendations against a real PostgreSQL: capital, slots, limits, windows, risk, tax."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from engine_seed import HEADERS, ITEMS, ClientFactory, Row, older, seed_batch
from fastapi.testclient import TestClient

from gept.engine.policy import RISKS, STYLES, VOLUME_SHARE, Risk, Style
from gept.engine.schemas import RecommendationsOut
from gept.market.tax import tax_per_item

LIMITS = {i: lim for i, _, lim, *_ in ITEMS}
VOLUMES = {i: vol for i, _, _, vol, *_ in ITEMS}


def get_recs(client: TestClient, **params: str | int) -> dict[str, Any]:
    resp = client.get("/api/v1/flips", params=params, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    RecommendationsOut.model_validate(body)  # the documented shape, field by field
    return body


def expected_best(rows: list[Row], style: Style, risk: Risk) -> dict[int, Row]:
    """Oracle: the best eligible configuration per item, by EV x fill probability."""
    w, t = STYLES[style], RISKS[risk]
    best: dict[int, Row] = {}
    for r in rows:
        if not (w.min_hours <= r.hour_offset <= w.max_hours
                and t.min_offset_pct <= r.offset_pct <= t.max_offset_pct
                and r.expected_value >= t.min_expected_value
                and r.fill_probability >= t.min_fill_probability):
            continue
        cur = best.get(r.item_id)
        if cur is None or r.expected_value * r.fill_probability > \
                cur.expected_value * cur.fill_probability:
            best[r.item_id] = r
    return best


@pytest.mark.parametrize("style", ["active", "hybrid", "passive"])
@pytest.mark.parametrize("risk", ["low", "medium", "high"])
def test_recommendations_follow_style_window_and_risk_thresholds(
        client: TestClient, market: list[Row], style: Style, risk: Risk) -> None:
    body = get_recs(client, capital=50_000_000, style=style, risk=risk, slots=8)
    w, t = STYLES[style], RISKS[risk]
    oracle = expected_best(market, style, risk)
    for rec in body["recommendations"]:
        assert w.min_hours <= rec["window_hours"] <= w.max_hours
        assert t.min_offset_pct <= rec["offset_pct"] <= t.max_offset_pct
        assert rec["fill_probability"] >= t.min_fill_probability
        assert rec["expected_value"] >= t.min_expected_value
        # The best configuration of that item, not just any eligible one.
        best = oracle[rec["item_id"]]
        assert (rec["window_hours"], rec["offset_pct"]) == (best.hour_offset, best.offset_pct)
    scores = [r["score"] for r in body["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    # Every profitable eligible item is offered when there are slots for all of them.
    profitable = {i for i, r in oracle.items() if r.sell_price - tax_per_item(r.sell_price)
                  > r.buy_price}
    assert {r["item_id"] for r in body["recommendations"]} == profitable


def test_one_recommendation_per_item_and_no_more_than_slots(client: TestClient) -> None:
    for slots in (1, 2, 3):
        recs = get_recs(client, capital=50_000_000, style="passive", risk="high",
                        slots=slots)["recommendations"]
        assert 1 <= len(recs) <= slots
        assert len({r["item_id"] for r in recs}) == len(recs)


def test_quantity_respects_capital_per_slot(client: TestClient) -> None:
    body = get_recs(client, capital=20_000, style="hybrid", risk="high", slots=4)
    assert body["capital_per_slot"] == 5_000
    assert body["recommendations"], "cheap items fit into 5,000 gp per slot"
    for rec in body["recommendations"]:
        assert 0 < rec["capital_required"] <= 5_000
        assert rec["capital_required"] == rec["quantity"] * rec["buy_price"]
    # The whip (1.5M gp) cannot be bought with 5,000 gp.
    assert 102 not in {r["item_id"] for r in body["recommendations"]}


def test_quantity_respects_buy_limit_and_recent_volume(client: TestClient) -> None:
    recs = get_recs(client, capital=500_000_000, style="passive", risk="high",
                    slots=8)["recommendations"]
    by_item = {r["item_id"]: r for r in recs}
    assert by_item[104]["quantity"] == 3                               # buy limit 3
    assert by_item[103]["quantity"] == int(100 * VOLUME_SHARE)          # 24 h volume 100
    assert by_item[106]["quantity"] == int(1_000 * VOLUME_SHARE)        # no limit known
    for rec in recs:
        if LIMITS[rec["item_id"]] is not None:
            assert rec["quantity"] <= LIMITS[rec["item_id"]]
        assert rec["quantity"] <= VOLUMES[rec["item_id"]] * VOLUME_SHARE
        assert rec["buy_limit"] == LIMITS[rec["item_id"]]
        assert rec["volume_24h"] == VOLUMES[rec["item_id"]]


def test_profit_is_after_ge_tax_and_unprofitable_items_are_dropped(client: TestClient) -> None:
    recs = get_recs(client, capital=500_000_000, style="passive", risk="high",
                    slots=8)["recommendations"]
    assert recs
    for rec in recs:
        q, buy, sell = rec["quantity"], rec["buy_price"], rec["sell_price"]
        assert rec["tax"] == q * tax_per_item(sell)
        assert rec["profit_if_filled"] == q * (sell - buy) - rec["tax"]
        assert rec["profit_if_filled"] > 0
        assert rec["expected_profit"] == round(rec["profit_if_filled"] * rec["fill_probability"])
    whip = next(r for r in recs if r["item_id"] == 102)
    assert whip["tax"] == whip["quantity"] * 31_200                    # 2 % of 1,560,000
    # 50 -> 51 gp earns 1 gp and pays 1 gp tax: never recommended.
    assert 105 not in {r["item_id"] for r in recs}


def test_excluded_items_are_left_out(client: TestClient) -> None:
    full = get_recs(client, capital=50_000_000, style="passive", risk="high", slots=8)
    ids = [r["item_id"] for r in full["recommendations"]]
    exclude = ids[:2]
    rest = get_recs(client, capital=50_000_000, style="passive", risk="high", slots=8,
                    exclude_item_ids=",".join(map(str, exclude)))
    assert [r["item_id"] for r in rest["recommendations"]] == ids[2:]


def test_recommendation_id_is_stable_and_retrievable(
        client: TestClient, engine_env: str, batch_time: datetime, market: list[Row]) -> None:
    first = get_recs(client, capital=50_000_000, style="active", risk="medium")
    again = get_recs(client, capital=50_000_000, style="active", risk="medium")
    assert [r["id"] for r in first["recommendations"]] == \
        [r["id"] for r in again["recommendations"]]
    rec = first["recommendations"][0]
    one = client.get(f"/api/v1/flips/{rec['id']}", headers=HEADERS,
                     params={"capital": 50_000_000, "slots": 4})
    assert one.status_code == 200, one.text
    got = one.json()["recommendation"]
    assert {k: got[k] for k in ("item_id", "buy_price", "sell_price", "window_hours",
                                "offset_pct", "quantity", "profit_if_filled")} == \
        {k: rec[k] for k in ("item_id", "buy_price", "sell_price", "window_hours",
                             "offset_pct", "quantity", "profit_if_filled")}
    # Still retrievable after a newer batch replaced it in memory (read from its own batch).
    newer = batch_time + timedelta(minutes=5)
    with psycopg.connect(engine_env) as conn:
        seed_batch(conn, newer, [Row(101, 4, 0.015, 0.5, 0.02, 100, 104)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fresh = client.get("/api/v1/flips", headers=HEADERS,
                           params={"capital": 50_000_000}).json()
        if fresh["freshness"]["batch_time"] != first["freshness"]["batch_time"]:
            break
        time.sleep(0.1)
    assert fresh["freshness"]["batch_time"] != first["freshness"]["batch_time"]
    old = client.get(f"/api/v1/flips/{rec['id']}", headers=HEADERS,
                     params={"capital": 50_000_000, "slots": 4})
    assert old.status_code == 200
    assert old.json()["recommendation"]["item_id"] == rec["item_id"]
    assert old.json()["freshness"]["batch_time"] == first["freshness"]["batch_time"]


def test_unknown_recommendation_id_is_404(client: TestClient) -> None:
    resp = client.get("/api/v1/flips/rec-1700000000-999-4-125", headers=HEADERS)
    assert resp.status_code == 404
    assert "not found" in resp.json()["detail"]


def test_new_batch_is_served_without_restart(
        client: TestClient, engine_env: str, batch_time: datetime) -> None:
    newer = batch_time + timedelta(minutes=5)
    with psycopg.connect(engine_env) as conn:
        seed_batch(conn, newer, [Row(104, 2, 0.015, 0.5, 0.02, 2_000, 2_080)])
    deadline = time.monotonic() + 10
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = get_recs(client, capital=1_000_000, style="active", risk="high")
        if body["recommendations"] and body["recommendations"][0]["item_id"] == 104 and \
                len(body["recommendations"]) == 1:
            break
        time.sleep(0.1)
    assert [r["item_id"] for r in body["recommendations"]] == [104]


def test_stale_batch_is_flagged_and_health_degrades(
        engine_env: str, make_client: ClientFactory, batch_time: datetime) -> None:
    stale_time = older(batch_time, 60)
    with psycopg.connect(engine_env) as conn:
        seed_batch(conn, stale_time, [Row(101, 4, 0.015, 0.5, 0.02, 100, 104)])
    client = make_client()
    body = get_recs(client, capital=1_000_000, style="active", risk="high")
    assert body["freshness"]["stale"] is True
    assert body["freshness"]["age_seconds"] >= 3600
    health = client.get("/api/v1/health").json()
    assert health["status"] == "degraded"
    assert any("older than" in r for r in health["reasons"])


def test_fresh_batch_is_not_stale(client: TestClient) -> None:
    body = get_recs(client, capital=1_000_000)
    assert body["freshness"]["stale"] is False
