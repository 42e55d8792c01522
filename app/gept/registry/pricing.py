"""Order prices and expected value of a flip, the same for labels and for predictions.

A flip at offset ``o`` buys at ``floor(low × (1 − o))`` and sells at ``ceil(high × (1 + o))``
where high/low are the item's current 5-minute average prices. The expected value is
``probability × net return after GE tax`` using :mod:`gept.market.tax` (the one tax).

Example:
    >>> import numpy as np
    >>> buy, sell = order_prices(np.array([1000.0]), np.array([1010.0]), [0.02])
    >>> buy.tolist(), sell.tolist()
    ([[980]], [[1031]])
    >>> round(float(net_returns(buy, sell)[0, 0]), 4)   # (1031 - 20 - 980) / 980
    0.0316
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gept.market import tax

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EPS = 1e-9  # keeps 1000 × (1 − 0.02) at 980, not 979.999… → 979


def order_prices(low: FloatArray, high: FloatArray,
                 offsets: Sequence[float]) -> tuple[IntArray, IntArray]:
    """Buy and sell prices, shape ``low.shape + (len(offsets),)``; NaN prices give 0."""
    off = np.asarray(offsets, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        buy = np.floor(np.nan_to_num(low)[..., None] * (1.0 - off) + _EPS)
        sell = np.ceil(np.nan_to_num(high)[..., None] * (1.0 + off) - _EPS)
    return buy.astype(np.int64), sell.astype(np.int64)


def net_returns(buy: IntArray, sell: IntArray) -> FloatArray:
    """Profit per gp invested after GE tax, element-wise (0 where buy <= 0).

    The tax comes from :func:`gept.market.tax.net_return`, evaluated once per distinct
    (buy, sell) pair so that 400,000 rows cost a few thousand calls.
    """
    pairs = np.stack([buy.ravel(), sell.ravel()], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    values = np.array([tax.net_return(float(b), float(s)) for b, s in unique.tolist()],
                      dtype=np.float64)
    out: FloatArray = values[inverse.ravel()].reshape(buy.shape)
    return out
