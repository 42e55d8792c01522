"""Labels, the purged temporal split, AUC and the validation gate (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from gept.core.errors import InvalidInput
from gept.registry.grid import TargetGrid
from gept.registry.history import History
from gept.training.dataset import build
from gept.training.evaluate import Evaluation, Gate, auc, evaluate
from gept.training.targets import make_labels


def flat_history(n_blocks: int, high: float = 1010.0, low: float = 1000.0) -> History:
    h = np.full((1, n_blocks), high)
    lo = np.full((1, n_blocks), low)
    z = np.zeros((1, n_blocks))
    return History(np.array([7], dtype=np.int64), 0, h, lo, z.copy(), z.copy(), -3600 * 170,
                   np.full((1, 200), np.nan), ["x"], np.array([np.nan]), np.array([np.nan]))


def test_fill_needs_both_legs_within_the_window_and_only_after_t() -> None:
    grid = TargetGrid.parse("1,2", "0.02")           # buy 980, sell ceil(1010*1.02)=1031
    hist = flat_history(60)
    hist.low[0, 20] = 975                              # buy leg fills at block 20
    hist.high[0, 30] = 1040                            # sell leg fills at block 30
    hist.high[0, 5] = 5000                             # only at/before t=5: never counts for t>=5
    at = np.array([5, 10, 18, 19, 20, 25], dtype=np.int64)
    labels, known = make_labels(hist, grid, at)
    one_h, two_h = labels[0, :, 0], labels[0, :, 1]
    # 1 h = 12 blocks: from t=18 the window t+1..t+12 holds both block 20 and block 30.
    assert one_h.tolist() == [False, False, True, True, False, False]
    # 2 h = 24 blocks: t=10 covers 11..34 (both legs); t=20 no longer sees its own block 20.
    assert two_h.tolist() == [False, True, True, True, False, False]
    assert known.tolist() == [True, True, True, True, True, True]
    assert make_labels(hist, grid, np.array([40], dtype=np.int64))[1].tolist() == [False]


def test_split_is_temporal_and_purged() -> None:
    grid = TargetGrid.parse("1,2", "0.0125,0.02")
    rng = np.random.default_rng(0)
    n = 3000
    hist = flat_history(n)
    mid = 1000 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    hist.high[0] = np.round(mid * 1.005)
    hist.low[0] = np.round(mid * 0.995)
    data = build(hist, grid, stride=3, train_fraction=0.7, val_fraction=0.15)
    gap = grid.max_window_blocks
    assert data.train.block.max() + gap < data.val.block.min()
    assert data.val.block.max() + gap < data.test.block.min()
    sizes = data.sizes()
    assert sizes["train"] > sizes["val"] > 0
    assert sizes["test"] > 0


def test_too_little_history_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="not enough history"):
        build(flat_history(600), TargetGrid.named("default"), stride=3, train_fraction=0.7,
              val_fraction=0.15)


def test_auc_known_values() -> None:
    assert auc(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([0.4, 0.3, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    assert np.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_evaluation_and_gate() -> None:
    rng = np.random.default_rng(1)
    y = rng.random((500, 3)) < 0.3
    good = np.clip(y * 0.3 + rng.random((500, 3)) * 0.7, 0, 1)
    ev = evaluate(good, y)
    assert 0.8 < ev.mean_auc < 0.99
    assert ev.targets_scored == 3
    assert sum(b["n"] for b in ev.reliability) == 1500
    assert 0 <= ev.brier <= 1
    assert Gate(min_auc=0.55).check(ev, 3)[0]
    passed, reason = Gate(min_auc=0.99).check(ev, 3)
    assert not passed
    assert "0.99" in reason
    few = Evaluation([0.9, None, None], [0.1] * 3, [0.3] * 3, 0.9, 1, 0.1, 0.0)
    assert not Gate(min_scored_fraction=0.5).check(few, 3)[0]
