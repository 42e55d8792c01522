"""Features of an item at a 5-minute block, computed for many items and times at once.

Shared by training and inference (the model contract lives with the registry), so a model is
always served exactly the features it was trained on. Every feature at block ``t`` reads only
blocks ``<= t`` and hourly blocks that had closed by the end of block ``t``
(tests/unit/registry/test_features.py perturbs the future and proves it).

Price features are ratios and log-returns, so one model can serve cheap and expensive items.

Example:
    >>> feats = compute_features(hist, at=np.array([hist.n_blocks - 1]))  # doctest: +SKIP
    >>> feats.shape == (len(hist.item_ids), 1, len(FEATURE_NAMES))       # doctest: +SKIP
    True
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gept.registry import rolling
from gept.registry.history import BLOCK_SECONDS, HOUR_SECONDS, History

FEATURE_SET = "v1"

RETURN_LAGS = (1, 3, 6, 12, 24, 48, 96, 288)          # 5 min .. 24 h
VOLATILITY_WINDOWS = (12, 48, 288)                    # 1 h, 4 h, 24 h
PARKINSON_WINDOWS = (12, 48)
RANGE_WINDOWS = (12, 48, 144, 288)                    # 1 h .. 24 h
VOLUME_WINDOWS = (1, 12, 288)
MEDIAN_24H_STEP = 12                                  # 24 points, one per hour
MEDIAN_7D_STEP_HOURS = 4                              # 42 points over a week
FFILL_LIMIT = 36                                      # a price older than 3 h is no price
# Blocks of history a feature at t may read: the 288-block return of a forward-filled price.
LOOKBACK_BLOCKS = max(RETURN_LAGS) + FFILL_LIMIT + 6

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{k}" for k in RETURN_LAGS),
    *(f"volatility_{k}" for k in VOLATILITY_WINDOWS),
    *(f"parkinson_{k}" for k in PARKINSON_WINDOWS),
    "spread", "spread_mean_12", "spread_mean_288",
    *(f"range_{k}" for k in RANGE_WINDOWS),
    *(f"log_volume_{k}" for k in VOLUME_WINDOWS),
    "volume_ratio_12_288", "volume_imbalance_12", "rsi_48",
    "dist_median_24h", "dist_median_7d", "ret_7d",
    "staleness", "missing_frac_288",
    "hour_sin", "hour_cos", "dow_sin", "dow_cos", "is_weekend",
    "log_price", "log_buy_limit", "members",
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def current_prices(hist: History) -> tuple[FloatArray, FloatArray]:
    """(high, low) per item and block, forward-filled at most ``FFILL_LIMIT`` blocks."""
    return rolling.ffill(hist.high, FFILL_LIMIT), rolling.ffill(hist.low, FFILL_LIMIT)


def _lag(x: FloatArray, k: int) -> FloatArray:
    out = np.full_like(x, np.nan)
    out[:, k:] = x[:, :-k]
    return out


def _median_at(x: FloatArray, at: IntArray, points: int, step: int) -> FloatArray:
    """Median of x[t], x[t-step], ... (``points`` values) for each t in ``at``."""
    offsets = np.arange(points, dtype=np.int64) * step
    idx = at[:, None] - offsets[None, :]
    valid = (idx >= 0) & (idx < x.shape[1])
    gathered = x[:, np.clip(idx, 0, x.shape[1] - 1)]
    gathered = np.where(valid[None, :, :], gathered, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out: FloatArray = np.nanmedian(gathered, axis=2)
    return out


def compute_features(hist: History, at: IntArray) -> npt.NDArray[np.float32]:
    """Features for every item at block positions ``at``: shape (items, len(at), features)."""
    at = np.asarray(at, dtype=np.int64)
    high, low = current_prices(hist)
    with np.errstate(all="ignore"):
        mid = np.where(np.isnan(high), low, np.where(np.isnan(low), high, (high + low) / 2))
        log_mid = np.log(mid)
        r1 = log_mid - _lag(log_mid, 1)
        cols: list[FloatArray] = []

        def take(x: FloatArray) -> None:
            cols.append(x[:, at])

        for k in RETURN_LAGS:
            take(log_mid - _lag(log_mid, k))
        for k in VOLATILITY_WINDOWS:
            take(rolling.past_std(r1, k))
        raw_hl = np.log(hist.high / hist.low)
        for k in PARKINSON_WINDOWS:
            take(np.sqrt(rolling.past_mean(raw_hl * raw_hl, k) / (4 * np.log(2))))
        spread = (high - low) / mid
        take(spread)
        raw_spread = (hist.high - hist.low) / ((hist.high + hist.low) / 2)
        take(rolling.past_mean(raw_spread, 12))
        take(rolling.past_mean(raw_spread, 288))
        for k in RANGE_WINDOWS:
            take((rolling.past_max(hist.high, k) - rolling.past_min(hist.low, k)) / mid)
        volume = hist.vol_high + hist.vol_low
        logs: dict[int, FloatArray] = {}
        for k in VOLUME_WINDOWS:
            logs[k] = np.log1p(rolling.past_mean(volume, k))
            take(logs[k])
        take(logs[12] - logs[288])
        vh12, _ = rolling.past_sum(hist.vol_high, 12)
        vl12, _ = rolling.past_sum(hist.vol_low, 12)
        take((vh12 - vl12) / (vh12 + vl12 + 1.0))
        up, _ = rolling.past_sum(np.maximum(r1, 0.0), 48)
        absr, _ = rolling.past_sum(np.abs(r1), 48)
        take(np.where(absr > 0, up / absr, 0.5))

        mid_at = mid[:, at]
        cols.append(mid_at / _median_at(mid, at, 24, MEDIAN_24H_STEP) - 1.0)
        # Hourly block h is usable at 5-minute block t once it has closed: h + 1 h <= t + 5 min.
        times = hist.start + BLOCK_SECONDS * at
        h_idx = (times + BLOCK_SECONDS - HOUR_SECONDS - hist.hourly_start) // HOUR_SECONDS
        h_valid = h_idx >= 0
        h_idx_c = np.clip(h_idx, 0, None)
        med7 = _median_at(hist.hourly_mid, h_idx_c, 42, MEDIAN_7D_STEP_HOURS)
        med7 = np.where(h_valid[None, :], med7, np.nan)
        cols.append(mid_at / med7 - 1.0)
        week = h_idx_c - 167
        n_hours = hist.hourly_mid.shape[1]
        past = hist.hourly_mid[:, np.clip(week, 0, n_hours - 1)]
        past = np.where(((week >= 0) & (week < n_hours))[None, :], past, np.nan)
        cols.append(np.log(mid_at / past))

        any_price = np.where(np.isnan(hist.high), hist.low, hist.high)
        take(rolling.blocks_since_valid(any_price, 288))
        _, present = rolling.past_sum(any_price, 288)
        cols.append(1.0 - present[:, at] / np.minimum(288, at + 1)[None, :])

        n_items = len(hist.item_ids)
        hour = (times % 86400) / 3600.0
        dow = ((times // 86400) + 3) % 7          # 1970-01-01 was a Thursday; 0 = Monday
        for values in (np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24),
                       np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7),
                       (dow >= 5).astype(np.float64)):
            cols.append(np.broadcast_to(values[None, :], (n_items, len(at))))
        cols.append(np.log(mid_at))
        cols.append(np.broadcast_to(np.log1p(hist.buy_limit)[:, None], (n_items, len(at))))
        cols.append(np.broadcast_to(hist.members[:, None], (n_items, len(at))))

    out = np.stack(cols, axis=2).astype(np.float32)
    out[~np.isfinite(out)] = np.nan
    return out
