"""Vectorised rolling windows over (items, time) arrays, NaN-aware.

Every function works along axis 1 (time) of a 2-D float array. "Past" windows cover
``[t-k+1, t]`` (they never read after ``t``); "future" windows cover ``[t+1, t+k]`` and are only
used for labels. Minimum/maximum use a sparse table (O(T log k)), sums use prefix sums.

Example:
    >>> import numpy as np
    >>> x = np.array([[1.0, 3.0, 2.0, 5.0]])
    >>> past_max(x, 2).tolist()
    [[1.0, 3.0, 3.0, 5.0]]
    >>> future_min(x, 2).tolist()
    [[2.0, 2.0, nan, nan]]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
_Reduce = Callable[[Array, Array], Array]


def _levels(x: Array, k: int, op: _Reduce) -> list[Array]:
    """Sparse table: level j holds op over [s, s + 2**j) (NaN-padded past the end)."""
    levels = [x]
    span = 1
    while span * 2 <= k:
        prev = levels[-1]
        shifted = np.full_like(prev, np.nan)
        shifted[:, :-span] = prev[:, span:]
        levels.append(op(prev, shifted))
        span *= 2
    return levels


def _window(x: Array, starts: npt.NDArray[np.int64], k: int, op: _Reduce) -> Array:
    """Op over [start, start + k) for each start; positions outside ``x`` count as NaN.

    ``x`` is padded with ``k`` NaN columns on both sides so that a truncated window never
    borrows a value from outside its own range (that would be look-ahead at the start).
    """
    n_items, n_t = x.shape
    padded = np.full((n_items, n_t + 2 * k), np.nan)
    padded[:, k:k + n_t] = x
    levels = _levels(padded, k, op)
    j = len(levels) - 1
    span = 1 << j
    lo = starts + k
    hi = starts + k + k - span
    table = levels[j]
    out: Array = op(table[:, lo], table[:, hi])
    return out


def past_max(x: Array, k: int) -> Array:
    """Max over the last ``k`` values up to and including t (NaNs ignored)."""
    starts = np.arange(x.shape[1], dtype=np.int64) - k + 1
    return _window(x, starts, k, np.fmax)


def past_min(x: Array, k: int) -> Array:
    """Min over the last ``k`` values up to and including t (NaNs ignored)."""
    starts = np.arange(x.shape[1], dtype=np.int64) - k + 1
    return _window(x, starts, k, np.fmin)


def _future(x: Array, k: int, op: _Reduce) -> Array:
    """``op`` over the ``k`` values strictly after t; NaN where the window passes the end."""
    n_t = x.shape[1]
    out = _window(x, np.arange(n_t, dtype=np.int64) + 1, k, op)
    out[:, max(0, n_t - k):] = np.nan
    return out


def future_min(x: Array, k: int) -> Array:
    """Min over the ``k`` values strictly after t; NaN where the window passes the end."""
    return _future(x, k, np.fmin)


def future_max(x: Array, k: int) -> Array:
    """Max over the ``k`` values strictly after t; NaN where the window passes the end."""
    return _future(x, k, np.fmax)


def past_sum(x: Array, k: int) -> tuple[Array, Array]:
    """(sum of non-NaN values, count of non-NaN values) over the last ``k`` values."""
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    n_items, n_t = x.shape
    cs = np.zeros((n_items, n_t + 1))
    np.cumsum(filled, axis=1, out=cs[:, 1:])
    cn = np.zeros((n_items, n_t + 1))
    np.cumsum(valid, axis=1, out=cn[:, 1:])
    end = np.arange(1, n_t + 1)
    start = np.maximum(0, end - k)
    return cs[:, end] - cs[:, start], cn[:, end] - cn[:, start]


def past_mean(x: Array, k: int) -> Array:
    """Mean of the non-NaN values over the last ``k`` values (NaN when there are none)."""
    total, count = past_sum(x, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: Array = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def past_std(x: Array, k: int) -> Array:
    """Population standard deviation over the last ``k`` values (NaN with < 2 values)."""
    total, count = past_sum(x, k)
    total_sq, _ = past_sum(x * x, k)
    safe = np.maximum(count, 1)
    var = np.maximum(total_sq / safe - (total / safe) ** 2, 0.0)
    out: Array = np.where(count >= 2, np.sqrt(var), np.nan)
    return out


def ffill(x: Array, limit: int) -> Array:
    """Carry the last non-NaN value forward at most ``limit`` steps (causal)."""
    n_items, n_t = x.shape
    idx = np.where(~np.isnan(x), np.arange(n_t), -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    rows = np.arange(n_items)[:, None]
    out = x[rows, np.maximum(idx, 0)]
    age = np.arange(n_t)[None, :] - idx
    return np.where((idx >= 0) & (age <= limit), out, np.nan)


def blocks_since_valid(x: Array, cap: int) -> Array:
    """Steps since the last non-NaN value (0 when present now), capped at ``cap``."""
    n_t = x.shape[1]
    idx = np.where(~np.isnan(x), np.arange(n_t), -cap - 1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    age = np.arange(n_t)[None, :] - idx
    out: Array = np.minimum(age, cap).astype(np.float64)
    return out
