"""Small pieces of the model contract: JSON-safe metrics, the output mapping, confidence."""

from __future__ import annotations

import numpy as np

from gept.registry.lifecycle import json_safe
from gept.registry.model import confidence, predict


class Half:
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.full((x.shape[0], 2), 0.5)


def test_nan_and_inf_become_null_for_jsonb() -> None:
    assert json_safe({"a": float("nan"), "b": [1.0, float("inf")], "c": "x"}) == {
        "a": None, "b": [1.0, None], "c": "x"}


def test_untrained_targets_get_their_base_rate() -> None:
    metrics = {"trained_targets": [0, 2], "fallback_rates": [0.1, 0.03, 0.2]}
    probs = predict(Half(), metrics, np.zeros((4, 5), dtype=np.float32))
    assert probs.shape == (4, 3)
    assert probs[:, 0].tolist() == [0.5] * 4
    assert probs[:, 1].tolist() == [0.03] * 4
    assert probs[:, 2].tolist() == [0.5] * 4


def test_confidence_from_target_auc() -> None:
    assert confidence([0.8, 0.7, 0.6, None]).tolist() == ["high", "medium", "low", "low"]
