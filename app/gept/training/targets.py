"""Labels: does a flip at (window, offset) fill, judged from the blocks after t only.

For item i at block t with current prices (high, low) and offset o, the flip is
``buy = floor(low × (1 − o))`` and ``sell = ceil(high × (1 + o))``
(:func:`gept.registry.pricing.order_prices`, the same prices inference publishes). It fills
within a window of w hours when, over blocks t+1 … t+12w, the lowest average low price
reaches the buy (``min low <= buy``) and the highest average high price reaches the sell
(``max high >= sell``). A label whose window runs past the end of the history is unknown.

Example:
    >>> labels, known = make_labels(hist, grid, at)     # doctest: +SKIP
    >>> labels.shape == (len(hist.item_ids), len(at), grid.size)   # doctest: +SKIP
    True
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gept.registry import rolling
from gept.registry.features import current_prices
from gept.registry.grid import BLOCKS_PER_HOUR, TargetGrid
from gept.registry.history import History
from gept.registry.pricing import order_prices


def make_labels(hist: History, grid: TargetGrid, at: npt.NDArray[np.int64]
                ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(labels (items, len(at), targets), known (len(at),)) for block positions ``at``."""
    at = np.asarray(at, dtype=np.int64)
    high_now, low_now = current_prices(hist)
    buy, sell = order_prices(low_now[:, at], high_now[:, at], grid.offsets_float())
    priced = ~(np.isnan(high_now[:, at]) | np.isnan(low_now[:, at]))
    labels = np.zeros((len(hist.item_ids), len(at), grid.size), dtype=bool)
    n_off = len(grid.offsets)
    for w_i, hours in enumerate(grid.windows_hours):
        k = hours * BLOCKS_PER_HOUR
        fmin = rolling.future_min(hist.low, k)[:, at]
        fmax = rolling.future_max(hist.high, k)[:, at]
        with np.errstate(invalid="ignore"):
            fills = (fmin[..., None] <= buy) & (fmax[..., None] >= sell)
        labels[:, :, w_i * n_off:(w_i + 1) * n_off] = fills & priced[..., None]
    known = at + grid.max_window_blocks <= hist.n_blocks - 1
    return labels, known
