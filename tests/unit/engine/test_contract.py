"""The clients' shapes and our rules behind them: rec ids, margins, categories, trend,
advice on orders, alerts, crowding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gept.engine.advice import Order, advise, break_even
from gept.engine.alerts import alert_for
from gept.engine.cache import build_snapshot
from gept.engine.contract import (
    category_of,
    contract_rec_id,
    fill_confidence,
    icon_url,
    parse_contract_rec_id,
    trend_of,
)
from gept.engine.crowding import Crowding
from gept.engine.recommend import Candidate, margin_stream
from gept.engine.trades import OpenTrade
from gept.market.tax import tax_per_item

T = datetime(2026, 2, 11, 17, 35, tzinfo=UTC)


def cand(item: int, offset: float, fill: float, ev: float = 0.01, hours: int = 4,
         buy: int = 1000) -> Candidate:
    return Candidate(item_id=item, item_name=f"Item {item}", hour_offset=hours,
                     offset_pct=offset, fill_probability=fill, expected_value=ev,
                     buy_price=buy, sell_price=round(buy * (1 + 2 * offset) + 30),
                     confidence="high", model_id=1, buy_limit=100, volume_24h=10_000)


def test_rec_ids_name_the_item_and_the_batch_hour() -> None:
    rid = contract_rec_id(4151, T)
    assert rid == "rec_4151_2026021117"
    assert parse_contract_rec_id(rid) == (4151, datetime(2026, 2, 11, 17, tzinfo=UTC))
    assert parse_contract_rec_id("rec_4151_2026023117") is None      # no 31 February
    assert parse_contract_rec_id("opp-4151") is None


def test_margin_picks_each_items_best_offset_inside_the_range() -> None:
    rows = [("hybrid", "high", c) for c in (
        cand(1, 0.0125, 0.9), cand(1, 0.0225, 0.2), cand(2, 0.0225, 0.5), cand(3, 0.015, 0.4))]
    snap = build_snapshot(T, rows)
    by_offset = snap.by_offset[("hybrid", "high")]
    wide = [(c.item_id, c.offset_pct) for c in margin_stream(by_offset, 0.0225, None)]
    assert wide == [(2, 0.0225), (1, 0.0225)]                       # best first, one per item
    narrow = [(c.item_id, c.offset_pct) for c in margin_stream(by_offset, None, 0.015)]
    assert narrow == [(1, 0.0125), (3, 0.015)]
    assert [c.item_id for c in snap.ranked[("hybrid", "high")]] == [1, 2, 3]
    assert [c.item_id for c in snap.browse] == [1, 2, 3]


@pytest.mark.parametrize(("name", "members", "category"), [
    ("Nature rune", False, "Runes"), ("Super restore(4)", True, "Potions"),
    ("Shark", True, "Food"), ("Grimy ranarr weed", True, "Herbs"), ("Yew logs", False, "Logs"),
    ("Runite bar", True, "Ores & bars"), ("Dragon bones", True, "Bones"),
    ("Abyssal whip", True, "Weapons"), ("Rune platebody", False, "Armour"),
    ("Twisted thing", True, "Members"), ("Odd thing", False, "Free-to-play"),
])
def test_category_rule(name: str, members: bool, category: str) -> None:
    assert category_of(name, members=members) == category


def test_icon_trend_and_fill_confidence() -> None:
    assert icon_url("Super restore(4).png") == \
        "https://oldschool.runescape.wiki/images/Super_restore%284%29.png"
    assert icon_url(None) is None
    assert (trend_of(102, 100), trend_of(98, 100), trend_of(100.5, 100)) == \
        ("Rising", "Falling", "Stable")
    assert trend_of(None, 100) == "Stable"
    assert [fill_confidence(p) for p in (0.6, 0.3, 0.1)] == ["Strong", "Good", "Fair"]


def test_break_even_covers_the_buy_price_after_tax_and_no_less() -> None:
    for buy in (1, 49, 50, 51, 1000, 1_500_000, 250_000_000, 2_147_483_000):
        price = break_even(buy)
        assert price - tax_per_item(price) >= buy
        assert price == buy or (price - 1) - tax_per_item(price - 1) < buy


ROWS = [{"hour_offset": 4, "offset_pct": o, "fill_probability": p, "buy_price": 990,
         "sell_price": s, "current_high": 1005, "current_low": 995, "item_name": "X",
         "expected_value": 0.01, "model_id": 1}
        for o, p, s in ((0.0125, 0.7, 1020), (0.02, 0.3, 1040), (0.025, 0.1, 1060))]


def test_advice_on_sell_orders() -> None:
    high = advise(Order("sell", 1200, 5, 30, buy_price=990, expected_hours=4), ROWS, [])
    assert high["action"] == "adjust_price"
    assert high["recommendations"]["adjust_price"]["suggested_price"] == 1020
    assert high["recommendations"]["liquidate"]["instant_price"] == 995
    fine = advise(Order("sell", 1000, 5, 30, buy_price=990, expected_hours=4), ROWS, [])
    assert fine["action"] == "wait"
    assert fine["current_fill_probability"] == 0.9                  # the market crosses it
    # Overdue and nothing that covers the buy price fills better: sell now.
    stuck = advise(Order("sell", 1060, 5, 600, buy_price=1050, expected_hours=4), ROWS, [])
    assert stuck["action"] == "liquidate"


def test_advice_on_buy_orders_offers_other_items_when_overdue() -> None:
    alternatives = [{"item_id": 2, "item_name": "Y", "expected_profit": 10,
                     "fill_probability": 0.5, "expected_hours": 4}]
    low = [{**r, "buy_price": 900, "current_low": 950} for r in ROWS[1:]]
    answer = advise(Order("buy", 850, 5, 600, expected_hours=4), low, alternatives)
    assert answer["action"] == "abort_retry"
    assert answer["recommendations"]["abort_retry"]["alternative_items"] == alternatives


def test_alerts_only_when_the_sell_price_is_above_the_market() -> None:
    trade = OpenTrade("t", "u", 1, "X", buy_price=1000, sell_price=1100, quantity=3)
    assert alert_for(trade, high=1090, low=1080) is None             # within 2 %
    adjust = alert_for(trade, high=1050, low=1040)
    assert adjust is not None
    assert (adjust["type"], adjust["newSellPrice"]) == ("ADJUST_PRICE", 1050)
    assert adjust["profitDelta"] == -150
    sell = alert_for(trade, high=990, low=980)
    assert sell is not None
    assert (sell["type"], sell["adjustedSellPrice"]) == ("SELL_NOW", 980)
    # The market moving on does not make a new alert; relisting the trade does.
    again = alert_for(trade, high=1040, low=1030)
    assert again is not None
    assert again["id"] == adjust["id"]
    relisted = OpenTrade("t", "u", 1, "X", buy_price=1000, sell_price=1090, quantity=3)
    new = alert_for(relisted, high=1040, low=1030)
    assert new is not None
    assert new["id"] != adjust["id"]


def test_crowding_counts_deliveries_in_the_window_and_open_trades() -> None:
    c = Crowding(limit=2, window_seconds=60)
    c.record("a", [1], now=0.0)
    assert not c.crowded(1, "b", now=1.0)
    c.set_positions({1: frozenset({"c"})})
    assert c.crowded(1, "b", now=1.0)
    assert not c.crowded(1, "a", now=1.0)
    assert not c.crowded(1, "b", now=100.0) or c.holders(1, now=100.0) == {"c"}
    assert c.holders(1, now=100.0) == {"c"}                          # delivery expired
    assert not Crowding(limit=0, window_seconds=60).crowded(1, "b")
