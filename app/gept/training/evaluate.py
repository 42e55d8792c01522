"""Model quality: AUC per target, calibration (Brier score, reliability buckets), the gate.

Example:
    >>> import numpy as np
    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def auc(scores: FloatArray, labels: npt.NDArray[Any]) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks); NaN with one class only."""
    y = np.asarray(labels).astype(bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0          # 1-based average rank of each distinct score
    ranks = avg_rank[inverse.ravel()]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass
class Evaluation:
    """Test-set quality of one model."""

    target_auc: list[float | None]
    target_brier: list[float]
    positive_rate: list[float]
    mean_auc: float
    targets_scored: int
    brier: float
    ece: float
    reliability: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Scalars only."""
        return {"mean_auc": self.mean_auc, "targets_scored": self.targets_scored,
                "brier": self.brier, "ece": self.ece,
                "min_auc": min((a for a in self.target_auc if a is not None), default=None),
                "max_auc": max((a for a in self.target_auc if a is not None), default=None)}


def evaluate(probs: FloatArray, labels: npt.NDArray[np.bool_], buckets: int = 10) -> Evaluation:
    """Score predicted probabilities (rows, targets) against labels (rows, targets)."""
    k = probs.shape[1]
    aucs: list[float | None] = []
    for j in range(k):
        a = auc(probs[:, j], labels[:, j])
        aucs.append(None if a != a else round(a, 6))
    scored = [a for a in aucs if a is not None]
    y = labels.astype(np.float64)
    brier_t = ((probs - y) ** 2).mean(axis=0) if len(y) else np.zeros(k)
    flat_p, flat_y = probs.ravel(), y.ravel()
    edges = np.linspace(0.0, 1.0, buckets + 1)
    which = np.clip(np.digitize(flat_p, edges) - 1, 0, buckets - 1)
    reliability: list[dict[str, float]] = []
    ece = 0.0
    for b in range(buckets):
        mask = which == b
        n = int(mask.sum())
        if n == 0:
            continue
        pred, obs = float(flat_p[mask].mean()), float(flat_y[mask].mean())
        ece += n / flat_p.size * abs(pred - obs)
        reliability.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": n,
                            "predicted": round(pred, 6), "observed": round(obs, 6)})
    return Evaluation(
        target_auc=aucs, target_brier=[round(float(b), 6) for b in brier_t],
        positive_rate=[round(float(r), 6) for r in (y.mean(axis=0) if len(y) else
                                                    np.zeros(k))],
        mean_auc=float(np.mean(scored)) if scored else float("nan"),
        targets_scored=len(scored), brier=float(brier_t.mean()) if k else float("nan"),
        ece=round(ece, 6), reliability=reliability)


@dataclass(frozen=True)
class Gate:
    """The validation gate a model must pass before it is registered."""

    min_auc: float = 0.55
    min_scored_fraction: float = 0.5

    def check(self, ev: Evaluation, n_targets: int) -> tuple[bool, str]:
        """(passed, reason)."""
        if ev.targets_scored < self.min_scored_fraction * n_targets:
            return False, (f"only {ev.targets_scored}/{n_targets} targets could be scored "
                           f"(need {self.min_scored_fraction:.0%}): too little test data")
        if not ev.mean_auc >= self.min_auc:
            return False, f"mean test AUC {ev.mean_auc:.4f} < minimum {self.min_auc:.4f}"
        return True, f"mean test AUC {ev.mean_auc:.4f} >= {self.min_auc:.4f}"
