"""Features, rolling windows, the target grid and order prices (no database)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from gept.core.errors import InvalidInput
from gept.market import tax
from gept.registry import rolling
from gept.registry.features import FEATURE_NAMES, LOOKBACK_BLOCKS, compute_features
from gept.registry.grid import TargetGrid
from gept.registry.history import History
from gept.registry.pricing import net_returns, order_prices


def make_history(n_items: int = 3, n_blocks: int = 900, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    start = 1_767_225_600  # 2026-01-01T00:00Z
    mid = 1000 * np.exp(np.cumsum(rng.normal(0, 0.004, (n_items, n_blocks)), axis=1))
    high = np.round(mid * 1.01)
    low = np.round(mid * 0.99)
    high[rng.random(high.shape) < 0.1] = np.nan
    low[rng.random(low.shape) < 0.1] = np.nan
    vh = rng.integers(0, 500, (n_items, n_blocks)).astype(float)
    vl = rng.integers(0, 500, (n_items, n_blocks)).astype(float)
    hourly_start = start - 170 * 3600
    n_hours = (n_blocks * 300 + 170 * 3600) // 3600 + 1
    hourly = 1000 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_items, n_hours)), axis=1))
    return History(np.arange(1, n_items + 1, dtype=np.int64), start, high, low, vh, vl,
                   hourly_start, hourly, [f"item {i}" for i in range(n_items)],
                   np.array([100.0, np.nan, 5000.0][:n_items]),
                   np.array([1.0, 0.0, np.nan][:n_items]))


def test_features_at_t_do_not_change_when_the_future_changes() -> None:
    hist = make_history()
    at = np.array([LOOKBACK_BLOCKS - 1, 500, 700, 899], dtype=np.int64)
    before = compute_features(hist, at)
    for t_pos, t in enumerate(at[:-1]):
        perturbed = make_history()
        rng = np.random.default_rng(99)
        future = slice(int(t) + 1, None)
        perturbed.high[:, future] *= rng.uniform(0.5, 2.0, perturbed.high[:, future].shape)
        perturbed.low[:, future] = np.nan
        perturbed.vol_high[:, future] = 1e9
        # Hourly blocks that had not closed by the end of block t are "future" too.
        t_end = hist.start + 300 * (int(t) + 1)
        first_open_hour = (t_end - 3600 - hist.hourly_start) // 3600 + 1
        perturbed.hourly_mid[:, first_open_hour:] *= 3.0
        after = compute_features(perturbed, at[: t_pos + 1])
        np.testing.assert_array_equal(before[:, : t_pos + 1], after)


def test_the_perturbation_test_can_fail() -> None:
    hist = make_history()
    at = np.array([500], dtype=np.int64)
    before = compute_features(hist, at)
    hist.high[:, 500] *= 2  # the present is not the future: features must move
    assert not np.array_equal(before, compute_features(hist, at), equal_nan=True)


def test_feature_matrix_shape_and_names() -> None:
    hist = make_history()
    feats = compute_features(hist, np.array([899], dtype=np.int64))
    assert feats.shape == (3, 1, len(FEATURE_NAMES))
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    # With full history, only item-static features may be missing.
    missing = {FEATURE_NAMES[j] for j in range(len(FEATURE_NAMES))
               if np.isnan(feats[:, 0, j]).any()}
    assert missing <= {"log_buy_limit", "members"}


@pytest.mark.parametrize("k", [1, 2, 3, 7, 12, 50])
def test_rolling_windows_match_a_naive_loop(k: int) -> None:
    rng = np.random.default_rng(k)
    x = rng.normal(size=(2, 80))
    x[0, 10:20] = np.nan
    pmax, pmin = rolling.past_max(x, k), rolling.past_min(x, k)
    fmin, fmax = rolling.future_min(x, k), rolling.future_max(x, k)
    pmean = rolling.past_mean(x, k)
    for t in range(80):
        win = x[:, max(0, t - k + 1): t + 1]
        for i in range(2):
            vals = win[i][~np.isnan(win[i])]
            assert np.isnan(pmax[i, t]) if vals.size == 0 else pmax[i, t] == vals.max()
            assert np.isnan(pmin[i, t]) if vals.size == 0 else pmin[i, t] == vals.min()
            if vals.size:
                assert pmean[i, t] == pytest.approx(vals.mean())
            if t + k <= 79:
                fut = x[i, t + 1: t + k + 1]
                fut = fut[~np.isnan(fut)]
                if fut.size:
                    assert fmin[i, t] == fut.min()
                    assert fmax[i, t] == fut.max()
            else:
                assert np.isnan(fmin[i, t])


def test_ffill_respects_its_limit() -> None:
    x = np.array([[1.0, np.nan, np.nan, np.nan, 5.0]])
    assert rolling.ffill(x, 2).tolist()[0][:4] == [1.0, 1.0, 1.0, pytest.approx(np.nan,
                                                                              nan_ok=True)]


def test_grids_default_and_production() -> None:
    default = TargetGrid.named("default")
    production = TargetGrid.named("production")
    assert (default.size, production.size) == (42, 108)
    assert default.names[:2] == ["fill_1h_1.25pct", "fill_1h_1.5pct"]
    assert default.max_window_blocks == 48 * 12
    assert TargetGrid.parse("1,4", "0.02").names == ["fill_1h_2pct", "fill_4h_2pct"]
    with pytest.raises(InvalidInput, match="offsets"):
        TargetGrid.parse("1", "2.5")
    with pytest.raises(InvalidInput, match="grid"):
        TargetGrid.named("huge")


def test_order_prices_and_net_return_use_the_ge_tax() -> None:
    buy, sell = order_prices(np.array([1000.0, 40.0]), np.array([1010.0, 45.0]),
                             [0.0125, 0.025])
    assert buy.tolist() == [[987, 975], [39, 39]]
    assert sell.tolist() == [[1023, 1036], [46, 47]]
    net = net_returns(buy, sell)
    assert net[0, 0] == pytest.approx(tax.net_return(987, 1023))
    assert net[1, 1] == pytest.approx((47 - 39) / 39)  # below 50 gp: no tax
    assert net[0, 0] == pytest.approx((1023 - 20 - 987) / 987)
    assert Decimal("0.0125") in TargetGrid.named("default").offsets
