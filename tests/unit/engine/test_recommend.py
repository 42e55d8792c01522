"""Ranking, sizing and ids of recommendations (pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gept.engine.cache import build_snapshot
from gept.engine.policy import RISKS, STYLES, VOLUME_SHARE, Risk, Style, loosest
from gept.engine.recommend import Candidate, parse_rec_id, pick, quantity, rank, rec_id

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def cand(item_id: int = 1, *, buy: int = 1_000, sell: int = 1_100, p: float = 0.5,
         ev: float = 0.01, hours: int = 4, offset: float = 0.0125, limit: int | None = 100,
         volume: int | None = 1_000_000) -> Candidate:
    return Candidate(item_id=item_id, item_name=f"Item {item_id}", hour_offset=hours,
                     offset_pct=offset, fill_probability=p, expected_value=ev, buy_price=buy,
                     sell_price=sell, confidence="medium", model_id=7, buy_limit=limit,
                     volume_24h=volume)


def test_candidate_derives_score_and_profit_after_tax() -> None:
    c = cand(buy=1_000, sell=1_100, p=0.5, ev=0.02)
    assert c.score == pytest.approx(0.01)
    assert c.unit_tax == 22                     # 2 % of 1,100
    assert c.unit_profit == 1_100 - 22 - 1_000
    assert c.key == "1-4-125"


@pytest.mark.parametrize(("per_slot", "limit", "volume", "expected"), [
    (10_000, 100, 1_000_000, 10),     # capital binds
    (10_000_000, 100, 1_000_000, 100),  # buy limit binds
    (10_000_000, 100, 200, int(200 * VOLUME_SHARE)),  # recent volume binds
    (10_000_000, None, None, 10_000),  # only capital known
    (500, 100, 1_000_000, 0),         # cannot afford one
    (None, 100, None, 100),           # no capital given: the limit
])
def test_quantity_takes_the_tightest_bound(per_slot: int | None, limit: int | None,
                                           volume: int | None, expected: int) -> None:
    assert quantity(cand(limit=limit, volume=volume), per_slot) == expected


def test_pick_fills_at_most_slots_best_first_and_skips_what_does_not_fit() -> None:
    ranked: dict[tuple[Style, Risk], list[Candidate]] = {("hybrid", "medium"): rank([
        cand(1, p=0.9, ev=0.02),                       # best
        cand(2, p=0.8, ev=0.02, buy=50, sell=51),      # unprofitable after tax
        cand(3, p=0.7, ev=0.02, buy=10_000_000, sell=11_000_000),  # unaffordable
        cand(4, p=0.6, ev=0.02),
        cand(5, p=0.5, ev=0.02),
        cand(6, p=0.4, ev=0.02),
    ])}
    recs = pick(ranked, style="hybrid", risk="medium", capital=1_000_000, slots=2,
                exclude=frozenset(), batch_time=T)
    assert [r.candidate.item_id for r in recs] == [1, 4]
    assert all(r.capital_required <= 500_000 for r in recs)
    excl = pick(ranked, style="hybrid", risk="medium", capital=1_000_000, slots=8,
                exclude=frozenset({1, 5}), batch_time=T)
    assert [r.candidate.item_id for r in excl] == [4, 6]
    assert pick(ranked, style="active", risk="low", capital=1_000_000, slots=8,
                exclude=frozenset(), batch_time=T) == []


def test_recommendation_profit_and_tax_use_the_ge_rules() -> None:
    (rec,) = pick({("active", "high"): [cand(buy=140, sell=150, limit=10, p=0.5)]},
                  style="active", risk="high", capital=10_000, slots=1, exclude=frozenset(),
                  batch_time=T)
    body = rec.to_dict()
    assert body["tax"] == 10 * 3                 # 150 gp pays 3 gp
    assert body["profit_if_filled"] == 10 * (150 - 140) - 30
    assert body["expected_profit"] == round(body["profit_if_filled"] * 0.5)
    assert body["batch_time"] == "2026-03-01T12:00:00Z"


def test_rank_orders_by_score_then_shorter_window_then_item() -> None:
    a = cand(3, p=0.5, ev=0.02, hours=8)
    b = cand(2, p=0.5, ev=0.02, hours=4)
    c = cand(1, p=0.9, ev=0.02, hours=24)
    assert [x.item_id for x in rank([a, b, c])] == [1, 2, 3]


def test_rec_id_round_trips_and_is_stable() -> None:
    rid = rec_id(T, 4151, 12, 0.0175)
    assert rid == rec_id(T, 4151, 12, 0.0175)
    assert parse_rec_id(rid) == (T, 4151, 12, 0.0175)
    assert parse_rec_id("rec-1-2-3") is None
    assert parse_rec_id("rec-999999999999-1-1-1") is None   # beyond datetime's range
    snap = build_snapshot(T, [("active", "high", cand(4151, hours=12, offset=0.0175))])
    assert rid in snap.by_id
    (first,) = pick(snap.ranked, style="active", risk="high", capital=10_000_000, slots=1,
                    exclude=frozenset(), batch_time=T)
    assert first.id == rid


def test_policy_tables_are_consistent() -> None:
    for window in STYLES.values():
        assert 1 <= window.min_hours <= window.max_hours
    loose = loosest()
    for t in RISKS.values():
        assert t.min_offset_pct <= t.max_offset_pct
        assert loose.min_expected_value <= t.min_expected_value
        assert loose.min_fill_probability <= t.min_fill_probability
    # Riskier means accepting less likely fills.
    assert RISKS["low"].min_fill_probability > RISKS["medium"].min_fill_probability > \
        RISKS["high"].min_fill_probability


def test_candidate_is_immutable() -> None:
    c = cand()
    with pytest.raises(AttributeError):
        c.buy_price = 5  # type: ignore[misc]  # the point: a frozen dataclass refuses it
    assert replace(c, buy_price=5).unit_profit == 1_100 - 22 - 5
