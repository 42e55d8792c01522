"""One training run: history → samples → CatBoost → evaluation → gate → registry.

Why MultiLogloss: the targets of one item at one moment are 42 (or 108) nested yes/no
questions about the same future path — a wider window or a smaller offset can only make a
fill more likely. One multi-label model shares its trees across all of them, costs one
model per scope instead of one per target (production once had 5,596 per-target models),
and predicts every target in one call. Each output is still an independent logistic
probability, which is what the engine's expected value needs.

Example:
    >>> with connect(autocommit=True) as conn:                   # doctest: +SKIP
    ...     result = run_training(conn, cfg, models_dir=Path("/var/lib/gept/models"))
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from gept.core.clock import utcnow
from gept.core.errors import Failed, GeptError, NeedsCoordination
from gept.registry import artifacts, lifecycle
from gept.registry.features import FEATURE_NAMES, FEATURE_SET
from gept.registry.history import latest_block, load_history, top_items
from gept.registry.model import predict
from gept.training.config import TrainConfig
from gept.training.dataset import Dataset, Split, build
from gept.training.evaluate import Evaluation, evaluate

log = logging.getLogger(__name__)


@dataclass
class Trained:
    """One fitted and evaluated model (not yet saved)."""

    scope: str
    model: Any
    trained_targets: list[int]
    fallback_rates: list[float]
    evaluation: Evaluation
    validation_auc: float
    passed: bool
    reason: str
    n_samples: int
    iterations_used: int
    seconds: float
    item_ids: list[int]
    model_id: int | None = None
    model_path: str | None = None
    status: str = "not registered"
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        """What the registry row stores (inference reads the target mapping from it)."""
        ev = self.evaluation
        return {"feature_set": FEATURE_SET, "n_targets": len(self.fallback_rates),
                "trained_targets": self.trained_targets, "fallback_rates": self.fallback_rates,
                "target_auc": ev.target_auc, "target_brier": ev.target_brier,
                "positive_rate": ev.positive_rate, "reliability": ev.reliability,
                "validation_auc": self.validation_auc, "gate": self.reason,
                **ev.summary()}

    def summary(self) -> dict[str, Any]:
        """For the command's output."""
        return {"scope": self.scope, "model_id": self.model_id, "status": self.status,
                "passed_gate": self.passed, "gate": self.reason,
                "mean_auc": _round(self.evaluation.mean_auc),
                "validation_auc": _round(self.validation_auc),
                "brier": _round(self.evaluation.brier), "ece": self.evaluation.ece,
                "targets_scored": self.evaluation.targets_scored,
                "targets_trained": len(self.trained_targets), "n_samples": self.n_samples,
                "iterations_used": self.iterations_used, "seconds": round(self.seconds, 2),
                "model_path": self.model_path, **self.extra}


def _round(value: float) -> float | None:
    return None if value != value else round(value, 4)


def _classifier(cfg: TrainConfig, use_best: bool) -> Any:
    from catboost import CatBoostClassifier

    params: dict[str, Any] = {
        "loss_function": "MultiLogloss", "eval_metric": "MultiLogloss",
        "iterations": cfg.iterations, "depth": cfg.depth, "learning_rate": cfg.learning_rate,
        "random_seed": cfg.seed, "task_type": cfg.task_type, "allow_writing_files": False,
        "verbose": False,
    }
    if use_best:
        params.update(od_type="Iter", od_wait=max(10, cfg.iterations // 4), use_best_model=True)
    if cfg.task_type == "GPU":
        params.update(devices="0", boosting_type="Plain", gpu_ram_part=0.85)
    else:
        params["thread_count"] = cfg.thread_count
    return CatBoostClassifier(**params)


def fit(data: Dataset, cfg: TrainConfig, scope: str) -> Trained:
    """Fit one MultiLogloss model on ``data`` and evaluate it on the test split."""
    started = time.monotonic()
    y_train = data.train.y
    positives = y_train.sum(axis=0)
    negatives = len(data.train) - positives
    trainable = np.flatnonzero((positives >= cfg.min_positives) &
                               (negatives >= cfg.min_positives))
    rates = [round(float(r), 6) for r in
             np.clip(y_train.mean(axis=0) if len(data.train) else
                     np.zeros(y_train.shape[1]), 0.0, 1.0)]
    model = None
    iterations = 0
    if trainable.size:
        model = _classifier(cfg, use_best=len(data.val) > 0)
        eval_set = (data.val.x, data.val.y[:, trainable].astype(np.int8)) if len(data.val) \
            else None
        model.fit(data.train.x, y_train[:, trainable].astype(np.int8), eval_set=eval_set)
        iterations = int(model.tree_count_)
    meta = {"trained_targets": trainable.tolist(), "fallback_rates": rates}
    test_probs = predict(model, meta, data.test.x)
    ev = evaluate(test_probs, data.test.y)
    val_ev = evaluate(predict(model, meta, data.val.x), data.val.y)
    passed, reason = cfg.gate.check(ev, cfg.grid.size)
    if trainable.size < cfg.gate.min_scored_fraction * cfg.grid.size:
        passed, reason = False, (f"only {trainable.size}/{cfg.grid.size} targets had "
                                 f">= {cfg.min_positives} positives and negatives to train on")
    items = sorted({int(i) for i in data.train.item.tolist()})
    trained = Trained(scope, model, trainable.tolist(), rates, ev, val_ev.mean_auc, passed,
                      reason, len(data.train), iterations, time.monotonic() - started, items)
    # Pooled AUC also rewards telling volatile items from calm ones; the within-item AUC
    # (mean over items of each item's mean target AUC) is the fair number to compare a
    # grouped model with per-item models.
    within = [evaluate(test_probs[data.test.item == i], data.test.y[data.test.item == i])
              .mean_auc for i in np.unique(data.test.item)]
    within = [a for a in within if a == a]
    trained.extra["within_item_auc"] = _round(float(np.mean(within))) if within else None
    return trained


def _by_item(data: Dataset, item_id: int) -> Dataset:
    def pick(split: Split) -> Split:
        return split.where(split.item == item_id)
    return Dataset(pick(data.train), pick(data.val), pick(data.test))


def _job(conn: psycopg.Connection[Any], run_id: str, status: str, **fields: Any) -> None:
    sets = ["status = %s", "status_changed_at = now()"]
    values: list[Any] = [status]
    for key, value in fields.items():
        sets.append(f"{key} = %s")
        values.append(Jsonb(lifecycle.json_safe(value)) if isinstance(value, dict) else value)
    conn.execute(f"UPDATE training_jobs SET {', '.join(sets)} WHERE run_id = %s",
                 (*values, run_id))


def run_training(conn: psycopg.Connection[Any], cfg: TrainConfig, *, models_dir: Path,
                 promote: bool = False, token: str | None = None) -> dict[str, Any]:
    """Train, evaluate, gate, save and register; optionally promote. Returns a summary.

    ``conn`` must be in autocommit mode (each step is its own transaction, and the job row
    must show progress while the run is going).

    Raises:
        Failed: when no model passed the gate (details hold the whole summary), or a step
            failed (the job row is FAILED with the error).
    """
    started = time.monotonic()
    run_id = _new_run(conn, cfg)
    try:
        result = _run(conn, cfg, run_id, models_dir, promote, token, started)
    except GeptError as exc:
        _job(conn, run_id, "FAILED", completed_at=utcnow(), error_message=exc.message[:4000],
             training_duration_seconds=time.monotonic() - started)
        raise
    except Exception as exc:
        _job(conn, run_id, "FAILED", completed_at=utcnow(),
             error_message=traceback.format_exc()[-4000:],
             training_duration_seconds=time.monotonic() - started)
        raise Failed(f"training run {run_id} failed: {exc}", run_id=run_id) from exc
    if result["models_passed"] == 0:
        raise Failed(f"training run {run_id}: no model passed the validation gate "
                     "(nothing registered)", **result)
    return result


def _new_run(conn: psycopg.Connection[Any], cfg: TrainConfig) -> str:
    """Insert the job row; run ids are YYYYMMDD_HHMMSS (suffixed if a second run starts
    within the same second).
    """
    base = utcnow().strftime("%Y%m%d_%H%M%S")
    for n in range(100):
        run_id = base if n == 0 else f"{base}_{n}"
        row = conn.execute(
            "INSERT INTO training_jobs (run_id, status, started_at, config, training_host, "
            "task_type) VALUES (%s, 'PREPARING', now(), %s, %s, %s) "
            "ON CONFLICT (run_id) DO NOTHING RETURNING id",
            (run_id, Jsonb(cfg.to_dict()), socket.gethostname(), cfg.task_type)).fetchone()
        if row is not None:
            return run_id
    raise Failed("could not allocate a training run id")


def _run(conn: psycopg.Connection[Any], cfg: TrainConfig, run_id: str, models_dir: Path,
         promote: bool, token: str | None, started: float) -> dict[str, Any]:
    latest = latest_block(conn)
    if latest is None:
        raise Failed("price_data_5min is empty: collect or backfill history before training")
    blocks = cfg.days * 288
    item_ids = top_items(conn, since=latest - timedelta(days=cfg.days), limit=cfg.items,
                         min_blocks=blocks // 2)
    if not item_ids:
        raise Failed(f"no item has {blocks // 2} or more 5-minute rows in the last "
                     f"{cfg.days} days", days=cfg.days)
    hist = load_history(conn, end=latest, blocks=blocks, item_ids=item_ids)
    data = build(hist, cfg.grid, stride=cfg.stride, train_fraction=cfg.train_fraction,
                 val_fraction=cfg.val_fraction)
    _job(conn, run_id, "TRAINING", items_count=len(item_ids))
    log.info("run %s: %d items, %s samples, %d targets, %s", run_id, len(item_ids),
             data.sizes(), cfg.grid.size, cfg.task_type)
    if cfg.scope == "global":
        trained = [fit(data, cfg, "global")]
    else:
        trained = [fit(_by_item(data, i), cfg, f"item:{i}") for i in item_ids]
    _job(conn, run_id, "VALIDATING", models_trained=len(trained))
    for model in trained:
        if not model.passed or model.model is None:
            continue
        meta = {"run_id": run_id, "scope": model.scope, "feature_set": FEATURE_SET,
                "feature_names": list(FEATURE_NAMES), "targets": cfg.grid.names,
                "windows_hours": list(cfg.grid.windows_hours),
                "offsets": [str(o) for o in cfg.grid.offsets], "items": model.item_ids,
                **model.evaluation.summary()}
        path, digest = artifacts.save(models_dir, run_id, model.scope, model.model, meta)
        artifacts.publish(conn, models_dir, path, digest)
        model.model_path = path
        model.model_id = lifecycle.register(
            conn, scope=model.scope, run_id=run_id, model_path=path, artifact_sha256=digest,
            windows_hours=cfg.grid.windows_hours, offsets_pct=cfg.grid.offsets,
            feature_names=FEATURE_NAMES, validation_passed=True,
            mean_auc=model.evaluation.mean_auc, validation_auc=model.validation_auc,
            item_ids=model.item_ids, n_samples=model.n_samples,
            iterations_used=model.iterations_used, task_type=cfg.task_type,
            training_duration_seconds=model.seconds, metrics=model.metrics())
        model.status = "PENDING"
        if promote:
            _promote(conn, model, token, models_dir)
    aged = lifecycle.advance_lifecycle(conn)
    passed = sum(1 for m in trained if m.passed)
    summary = {
        "run_id": run_id, "task_type": cfg.task_type, "scope": cfg.scope,
        "items": len(item_ids), "targets": cfg.grid.size, "samples": data.sizes(),
        "models_trained": len(trained), "models_passed": passed,
        "models": [m.summary() for m in trained], "lifecycle": aged,
        "seconds": round(time.monotonic() - started, 2)}
    _job(conn, run_id, "COMPLETED", completed_at=utcnow(), models_passed=passed,
         training_duration_seconds=time.monotonic() - started,
         metrics={m.scope: m.metrics() for m in trained})
    return summary


def _promote(conn: psycopg.Connection[Any], model: Trained, token: str | None,
             models_dir: Path) -> None:
    assert model.model_id is not None
    try:
        lifecycle.promote_initial(conn, model.model_id, models_dir=models_dir)
        model.status = "ACTIVE"
        model.extra["promotion"] = "bootstrap: first model of an empty registry (no approval)"
        return
    except NeedsCoordination:
        pass
    if token is None:
        model.extra["promotion"] = ("left PENDING: the registry already has an ACTIVE model; "
                                    f"promote with a person's approval: gept models promote "
                                    f"{model.model_id} --approval <approval>")
        return
    from gept.guards.coordination import Guard

    try:
        approved = Guard.on_this_host().require(
            lifecycle.ZONE, lifecycle.promote_plan_hash(model.model_id), token,
            action=f"gept train --promote (model {model.model_id})")
        lifecycle.promote(conn, model.model_id, approved=approved, models_dir=models_dir)
    except NeedsCoordination as exc:
        model.extra["promotion"] = f"left PENDING: {exc.message}"
        return
    model.status = "ACTIVE"
    model.extra["promotion"] = "promoted with a person's approval"
