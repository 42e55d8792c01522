"""Training samples: features and labels at sampled blocks, split by time.

The split is temporal (train, then validation, then test) and *purged*: a sample whose label
window reaches into the next split is dropped, otherwise the last training labels would be
computed from validation prices. Samples are taken every ``stride`` blocks because
neighbouring blocks are near-duplicates.

Example:
    >>> data = build(hist, grid, stride=3, train_fraction=0.7, val_fraction=0.15)
    ...                                                      # doctest: +SKIP
    >>> data.train.x.shape[1] == len(FEATURE_NAMES)           # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gept.core.errors import InvalidInput
from gept.registry.features import LOOKBACK_BLOCKS, compute_features, current_prices
from gept.registry.grid import BLOCKS_PER_HOUR, TargetGrid
from gept.registry.history import History
from gept.training.targets import make_labels


@dataclass
class Split:
    """Rows of one split."""

    x: npt.NDArray[np.float32]      # (rows, features)
    y: npt.NDArray[np.bool_]        # (rows, targets)
    item: npt.NDArray[np.int64]     # (rows,) item id
    block: npt.NDArray[np.int64]    # (rows,) block position

    def where(self, mask: npt.NDArray[np.bool_]) -> Split:
        """The rows where ``mask`` is true."""
        return Split(self.x[mask], self.y[mask], self.item[mask], self.block[mask])

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Dataset:
    """Train / validation / test splits."""

    train: Split
    val: Split
    test: Split

    def sizes(self) -> dict[str, int]:
        """Row counts per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def min_days(grid: TargetGrid, stride: int) -> float:
    """Roughly the least history (days) that leaves every split some samples."""
    blocks = LOOKBACK_BLOCKS + 3 * grid.max_window_blocks + 100 * stride
    return blocks / (24 * BLOCKS_PER_HOUR)


def build(hist: History, grid: TargetGrid, *, stride: int, train_fraction: float,
          val_fraction: float) -> Dataset:
    """Sample, label and split ``hist``.

    Raises:
        InvalidInput: when the history is too short for the grid's longest window.
    """
    first = LOOKBACK_BLOCKS - 1
    last = hist.n_blocks - 1 - grid.max_window_blocks
    at = np.arange(first, last + 1, stride, dtype=np.int64)
    gap = grid.max_window_blocks
    usable = last - first + 1 - 2 * gap
    if usable < 30 * stride:
        raise InvalidInput(
            f"not enough history: {hist.n_blocks / 288:.1f} days loaded, but the "
            f"{max(grid.windows_hours)} h window needs about {min_days(grid, stride):.1f} "
            "days (warm-up + purged train/validation/test)", field="days")
    cut1 = first + int(usable * train_fraction) + gap
    cut2 = cut1 + gap + int(usable * val_fraction)
    feats = compute_features(hist, at)
    labels, _known = make_labels(hist, grid, at)
    high, low = current_prices(hist)
    priced = ~(np.isnan(high[:, at]) | np.isnan(low[:, at]))
    n_items, n_at = priced.shape
    x = feats.reshape(n_items * n_at, -1)
    y = labels.reshape(n_items * n_at, -1)
    item = np.repeat(hist.item_ids, n_at)
    block = np.tile(at, n_items)
    rows = Split(x, y, item, block).where(priced.ravel())
    # Purge: a label looks gap blocks ahead, so keep it inside its own split.
    train = rows.where(rows.block + gap < cut1)
    val = rows.where((rows.block >= cut1) & (rows.block + gap < cut2))
    test = rows.where(rows.block >= cut2)
    return Dataset(train, val, test)
