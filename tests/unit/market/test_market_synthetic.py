"""SyntheticMarket: deterministic, random-access, realistic enough to exercise the pipeline."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gept.core.errors import InvalidInput
from gept.market.models import MAX_PRICE
from gept.market.simulator import SyntheticMarket
from gept.market.simulator.render import mapping_body, snapshot_body

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_same_seed_same_bytes_other_seed_other_market() -> None:
    a, b, c = SyntheticMarket(200, 11), SyntheticMarket(200, 11), SyntheticMarket(200, 12)
    assert snapshot_body(a.block(T0)) == snapshot_body(b.block(T0))
    assert mapping_body(a.mapping()) == mapping_body(b.mapping())
    assert a.latest(T0) == b.latest(T0)
    assert snapshot_body(a.block(T0)) != snapshot_body(c.block(T0))


def test_blocks_are_random_access_and_agree_with_bulk_history() -> None:
    m = SyntheticMarket(30, 5)
    late = T0 + timedelta(days=40, minutes=35)
    first = m.block(late)
    m.block(T0)  # visiting another block first must not change anything
    assert m.block(late) == first
    hist = list(m.history(late - timedelta(minutes=10), late + timedelta(minutes=5)))
    assert [s.timestamp for s in hist] == [late - timedelta(minutes=10),
                                           late - timedelta(minutes=5), late]
    assert hist[-1] == first


def test_history_arrays_shape_and_nan_for_missing() -> None:
    m = SyntheticMarket(50, 3)
    h = m.history_arrays(T0, T0 + timedelta(days=30))
    assert h.avg_high_price.shape == (8640, 50) == h.low_price_volume.shape
    assert h.timestamps[1] - h.timestamps[0] == 300
    missing = np.isnan(h.avg_high_price)
    assert np.array_equal(missing, h.high_price_volume == 0)
    assert 0.2 < missing.mean() < 0.9  # most items trade in few 5-minute blocks
    one = m.history_arrays(T0, T0 + timedelta(hours=1), item_ids=[int(m.item_ids[4])])
    assert np.array_equal(np.nan_to_num(one.avg_low_price[:, 0]),
                          np.nan_to_num(h.avg_low_price[:12, 4]))


def test_realistic_ranges_nulls_max_price_and_idle_stretches() -> None:
    m = SyntheticMarket(1000, 2)
    h = m.history_arrays(T0, T0 + timedelta(days=2))
    high = h.avg_high_price
    assert np.nanmin(high) >= 1
    assert any(r.high == MAX_PRICE for r in m.latest(T0))  # pinned at the GE maximum
    assert np.nanmin(h.avg_low_price) >= 1
    both = ~np.isnan(high) & ~np.isnan(h.avg_low_price)
    assert (high[both] >= h.avg_low_price[both]).all()
    assert h.high_price_volume.min() >= 0
    assert 100_000 < h.high_price_volume.max() <= 1_380_000  # the real 5-minute maximum
    idle = (h.high_price_volume == 0) & (h.low_price_volume == 0)
    # Some items stop trading for whole stretches (72 consecutive idle 5m blocks = 6 h).
    run = np.zeros(idle.shape[1], dtype=int)
    longest = np.zeros(idle.shape[1], dtype=int)
    for row in idle:
        run = np.where(row, run + 1, 0)
        longest = np.maximum(longest, run)
    assert (longest >= 72).sum() > 10
    limits = [r.limit for r in m.mapping()]
    assert None in limits
    assert 8 in limits or 70 in limits
    assert any(r.lowalch is None for r in m.mapping())
    assert any(r.high is None for r in m.latest(T0))


def test_prices_move_like_a_market_not_noise() -> None:
    m = SyntheticMarket(100, 4)
    mid = m.history_arrays(T0, T0 + timedelta(days=7), step=3600).avg_high_price
    ok = ~np.isnan(mid[1:]) & ~np.isnan(mid[:-1])
    step_change = np.abs(np.log(mid[1:][ok]) - np.log(mid[:-1][ok]))
    assert np.median(step_change) < 0.05  # hour to hour: small moves
    traded = mid[:, ~np.isnan(mid).all(axis=0)]  # items that never trade have no prices
    weekly = np.nanmax(traded, axis=0) / np.nanmin(traded, axis=0)
    assert np.nanmedian(weekly) > 1.01  # but it does move over a week


def test_latest_times_are_before_now_and_match_the_price_level() -> None:
    m = SyntheticMarket(200, 9)
    now = T0 + timedelta(hours=5, minutes=3)
    block = {r.item_id: r for r in m.block(T0 + timedelta(hours=5)).rows}
    for row in m.latest(now):
        if row.high is None:
            assert row.high_time is None
            continue
        assert row.high_time is not None
        assert row.high_time <= now
        if row.item_id not in block:  # not traded in that block, or not in /mapping
            continue
        ref = block[row.item_id].avg_high_price
        if ref is not None and row.high_time > now - timedelta(minutes=10):
            assert abs(row.high - ref) <= max(2, 0.2 * ref)


def test_timeseries_is_the_last_300_traded_blocks_before_now() -> None:
    m = SyntheticMarket(10, 1)
    item = int(m.item_ids[3])
    now = T0 + timedelta(minutes=30)
    rows = m.timeseries(item, 3600, now)
    assert 0 < len(rows) <= 300
    assert rows[-1].timestamp <= T0 - timedelta(hours=1)
    assert all(b.timestamp > a.timestamp and (b.timestamp - a.timestamp).seconds % 3600 == 0
               for a, b in itertools.pairwise(rows))
    assert rows[0].timestamp >= T0 - timedelta(hours=365)
    assert all(r.high_price_volume or r.low_price_volume for r in rows)  # no both-null points


def test_market_start_means_no_rows_before_it() -> None:
    m = SyntheticMarket(10, 1, start=T0)
    assert m.block(T0 - timedelta(minutes=5)).rows == ()
    assert m.block(T0).rows  # open: the traded items
    assert m.latest(T0 - timedelta(minutes=5)) == []


def test_bad_arguments_are_refused_with_the_field_named() -> None:
    m = SyntheticMarket(10, 1)
    with pytest.raises(InvalidInput) as info:
        m.block(T0 + timedelta(seconds=7))
    assert info.value.details["field"] == "timestamp"
    with pytest.raises(InvalidInput):
        m.block(datetime(2026, 1, 1))  # naive
    with pytest.raises(InvalidInput):
        SyntheticMarket(0, 1)
    with pytest.raises(InvalidInput) as info:
        m.index_of(999_999)
    assert info.value.details["field"] == "id"
