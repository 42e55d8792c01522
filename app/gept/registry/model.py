"""Turning a loaded model into one probability per target of its grid.

Targets too rare to train on (fewer than ``min_positives`` positives or negatives in the
training split) are not outputs of the CatBoost model; they are predicted as their
training base rate. The mapping is stored in the registry row's metrics
(``trained_targets``, ``fallback_rates``, ``target_auc``).

Example:
    >>> probs = predict(model, record.metrics, x)   # doctest: +SKIP
    >>> probs.shape == (len(x), record.metrics["n_targets"])   # doctest: +SKIP
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def predict(model: Any, metrics: dict[str, Any], x: npt.NDArray[np.float32]) -> FloatArray:
    """Probabilities (rows, targets) in [0, 1]."""
    rates = np.asarray(metrics["fallback_rates"], dtype=np.float64)
    trained = np.asarray(metrics["trained_targets"], dtype=np.int64)
    out = np.broadcast_to(rates, (x.shape[0], rates.size)).copy()
    if trained.size and x.shape[0]:
        raw = np.asarray(model.predict_proba(x), dtype=np.float64).reshape(x.shape[0], -1)
        out[:, trained] = raw
    result: FloatArray = np.clip(out, 0.0, 1.0)
    return result


def confidence(target_auc: list[float | None]) -> npt.NDArray[np.str_]:
    """Confidence label per target from its test AUC: >= 0.75 high, >= 0.65 medium, else low."""
    auc = np.array([0.5 if a is None else a for a in target_auc], dtype=np.float64)
    labels: npt.NDArray[np.str_] = np.where(auc >= 0.75, "high",
                                            np.where(auc >= 0.65, "medium", "low"))
    return labels
