"""From ACTIVE models and the latest block to a predictions batch, in one vectorised pass.

Each item is predicted by the ACTIVE model of its own scope (``item:<id>``) when there is
one, otherwise by the ``global`` model. Items without a current price (no trade in the last
3 hours) are skipped: a flip needs a price to offset from.

Example:
    >>> models = load_active(conn, models_dir)                    # doctest: +SKIP
    >>> batch = predict_block(conn, models, block)                # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from gept.core.errors import Failed, IntegrityError
from gept.inference.batch import CONFIDENCE, Batch
from gept.registry import artifacts, lifecycle
from gept.registry.features import (
    FEATURE_NAMES,
    LOOKBACK_BLOCKS,
    compute_features,
    current_prices,
)
from gept.registry.history import History, load_history
from gept.registry.model import confidence, predict
from gept.registry.pricing import net_returns, order_prices

I64 = npt.NDArray[np.int64]


@dataclass
class LoadedModel:
    """An ACTIVE model, checksum-verified and loaded."""

    record: lifecycle.ModelRecord
    model: Any

    @property
    def targets(self) -> int:
        """Windows × offsets."""
        return len(self.record.windows_hours) * len(self.record.offsets_pct)


def load_active(conn: psycopg.Connection[Any], models_dir: Path) -> list[LoadedModel]:
    """Every ACTIVE model, verified against its sha256 before loading.

    Raises:
        Failed: when no model is ACTIVE.
        IntegrityError: when an artifact fails its checksum or was trained on other features.
    """
    records = lifecycle.active_models(conn)
    if not records:
        raise Failed("no ACTIVE model: train one and promote it (gept train --promote)")
    loaded = []
    for record in records:
        if tuple(record.feature_names) != FEATURE_NAMES:
            raise IntegrityError(
                f"model {record.id} ({record.scope}) was trained on a different feature set "
                f"({len(record.feature_names)} features) than this code computes "
                f"({len(FEATURE_NAMES)}); retrain it", model_id=record.id)
        model = artifacts.load_verified(models_dir, record.model_path,
                                       record.artifact_sha256, conn)
        loaded.append(LoadedModel(record, model))
    return loaded


def _assign(hist: History, models: list[LoadedModel]) -> I64:
    """Index into ``models`` per item (-1: no model covers it)."""
    by_scope = {m.record.scope: i for i, m in enumerate(models)}
    default = by_scope.get("global", -1)
    return np.array([by_scope.get(f"item:{i}", default) for i in hist.item_ids.tolist()],
                    dtype=np.int64)


def predict_history(hist: History, models: list[LoadedModel], block: datetime) -> Batch:
    """The batch for the last block of ``hist``."""
    at = np.array([hist.n_blocks - 1], dtype=np.int64)
    feats = compute_features(hist, at)[:, 0, :]
    high_all, low_all = current_prices(hist)
    high, low = high_all[:, -1], low_all[:, -1]
    which = _assign(hist, models)
    priced = np.isfinite(high) & np.isfinite(low) & (which >= 0)
    offsets_all: list[Decimal] = sorted({o for m in models for o in m.record.offsets_pct})
    parts: list[dict[str, Any]] = []
    for m_idx, loaded in enumerate(models):
        rows = np.flatnonzero(priced & (which == m_idx))
        if rows.size == 0:
            continue
        rec = loaded.record
        windows = np.array(rec.windows_hours, dtype=np.int64)
        n_w, n_o, n_r = windows.size, len(rec.offsets_pct), rows.size
        probs = predict(loaded.model, rec.metrics, feats[rows]).reshape(n_r, n_w, n_o)
        buy, sell = order_prices(low[rows], high[rows], [float(o) for o in rec.offsets_pct])
        ev = probs * net_returns(buy, sell)[:, None, :]
        conf = confidence(rec.metrics.get("target_auc", [None] * loaded.targets))
        conf_code = np.array([CONFIDENCE.index(str(c)) for c in conf], dtype=np.int64)
        off_code = np.array([offsets_all.index(o) for o in rec.offsets_pct], dtype=np.int64)
        shape = (n_r, n_w, n_o)
        parts.append({
            "item_pos": np.broadcast_to(rows[:, None, None], shape).ravel(),
            "hour_offset": np.broadcast_to(windows[None, :, None], shape).ravel(),
            "offset_code": np.broadcast_to(off_code[None, None, :], shape).ravel(),
            "p": probs.ravel(), "ev": ev.ravel(),
            "buy": np.broadcast_to(buy[:, None, :], shape).ravel(),
            "sell": np.broadcast_to(sell[:, None, :], shape).ravel(),
            "conf": np.broadcast_to(conf_code.reshape(1, n_w, n_o), shape).ravel(),
            "model": np.full(n_r * n_w * n_o, rec.id, dtype=np.int64),
        })

    def cat(key: str, dtype: type[np.generic]) -> Any:
        if not parts:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([p[key] for p in parts]).astype(dtype)

    item_pos = cat("item_pos", np.int64)
    return Batch(
        time=block, item_id=hist.item_ids[item_pos], name_code=item_pos, names=hist.names,
        hour_offset=cat("hour_offset", np.int64), offset_code=cat("offset_code", np.int64),
        offsets=offsets_all, fill_probability=cat("p", np.float64),
        expected_value=cat("ev", np.float64), buy_price=cat("buy", np.int64),
        sell_price=cat("sell", np.int64),
        current_high=np.round(high[item_pos]).astype(np.int64),
        current_low=np.round(low[item_pos]).astype(np.int64),
        confidence_code=cat("conf", np.int64), model_id=cat("model", np.int64),
        model_ids=sorted({m.record.id for m in models}))


def predict_block(conn: psycopg.Connection[Any], models: list[LoadedModel],
                  block: datetime) -> tuple[Batch, History]:
    """Load the history the features need (every item) and predict ``block``."""
    hist = load_history(conn, end=block, blocks=LOOKBACK_BLOCKS)
    return predict_history(hist, models, block), hist
