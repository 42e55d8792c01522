"""The model registry lifecycle: PENDING → ACTIVE → DEPRECATED → SUNSET → ARCHIVED.

Rules, each enforced here and (where possible) by the schema as well:

- A model that failed its validation gate is never ACTIVE (``CHECK`` in migration 0002).
- One transaction swaps the ACTIVE model of a scope: the old one becomes DEPRECATED and the
  new one ACTIVE before commit, so readers see exactly one ACTIVE model, never zero or two
  (the partial unique index refuses two; a per-scope advisory lock serialises promoters).
- An artifact is checksum-verified before it may become ACTIVE, so promotion never activates
  a model the inference could not load.
- ``promote`` and ``rollback`` change what production serves: they are the ``model-registry``
  danger zone and take a verified :class:`~gept.guards.approval.Approval` (the caller ran it
  through :mod:`gept.guards.coordination`: the CLI with :func:`promote_plan_hash`, the host
  gate with the runbook's plan hash); every change is audited.
- ``promote_initial`` bootstraps an *empty registry* without an approval: with no ACTIVE model
  anywhere there is nothing the engine serves that the change could break, and a fresh
  system (the lab, a rebuilt database) must come up unattended. Once any scope has an ACTIVE
  model, activating another (a new item scope included) needs a person's approval.

Example:
    >>> with connect(autocommit=True) as conn:                         # doctest: +SKIP
    ...     promote(conn, 42, approved=Guard.on_this_host().require(
    ...         ZONE, promote_plan_hash(42), text, action="promote 42"))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gept.core.clock import utcnow
from gept.core.config import get_settings
from gept.core.errors import Failed, InvalidInput, NeedsCoordination
from gept.guards import audit as trail
from gept.guards.approval import Approval
from gept.guards.plans import plan_hash
from gept.registry import artifacts

log = logging.getLogger(__name__)

ZONE = "model-registry"
STATUSES = ("PENDING", "ACTIVE", "DEPRECATED", "SUNSET", "ARCHIVED")
PROMOTABLE = ("PENDING", "DEPRECATED", "SUNSET")
DEPRECATED_BEFORE_SUNSET = timedelta(hours=24)
SUNSET_GRACE = timedelta(hours=48)


@dataclass
class ModelRecord:
    """One row of ``model_registry``."""

    id: int
    scope: str
    run_id: str
    model_path: str
    artifact_sha256: str
    status: str
    validation_passed: bool
    mean_auc: float | None
    windows_hours: list[int]
    offsets_pct: list[Decimal]
    feature_names: list[str]
    item_ids: list[int] | None
    metrics: dict[str, Any]
    trained_at: datetime
    activated_at: datetime | None
    status_reason: str | None
    replaces_model_id: int | None
    task_type: str | None = None
    n_samples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (metrics summarised: per-target lists are left out)."""
        data = asdict(self)
        data["offsets_pct"] = [str(o) for o in self.offsets_pct]
        data["metrics"] = {k: v for k, v in self.metrics.items()
                           if not isinstance(v, list)}
        return data


@dataclass
class Change:
    """The result of a promotion or rollback."""

    action: str
    scope: str
    activated: int
    deprecated: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"action": self.action, "scope": self.scope, "activated": self.activated,
                "deprecated": self.deprecated, **self.extra}


_COLUMNS = ("id, scope, run_id, model_path, artifact_sha256, status, validation_passed, "
            "mean_auc, windows_hours, offsets_pct, feature_names, item_ids, metrics, "
            "trained_at, activated_at, status_reason, replaces_model_id, task_type, n_samples")


def _record(row: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        id=int(row["id"]), scope=row["scope"], run_id=row["run_id"],
        model_path=row["model_path"], artifact_sha256=row["artifact_sha256"],
        status=row["status"], validation_passed=bool(row["validation_passed"]),
        mean_auc=None if row["mean_auc"] is None else float(row["mean_auc"]),
        windows_hours=list(row["windows_hours"]), offsets_pct=list(row["offsets_pct"]),
        feature_names=list(row["feature_names"] or []),
        item_ids=None if row["item_ids"] is None else list(row["item_ids"]),
        metrics=dict(row["metrics"] or {}), trained_at=row["trained_at"],
        activated_at=row["activated_at"], status_reason=row["status_reason"],
        replaces_model_id=row["replaces_model_id"], task_type=row["task_type"],
        n_samples=row["n_samples"])


def _models_dir(models_dir: Path | None) -> Path:
    return models_dir if models_dir is not None else get_settings().models_dir


def _require_idle(conn: psycopg.Connection[Any]) -> None:
    # A registry change must be its own transaction; inside someone else's it would become
    # a savepoint and commit (or not) with unrelated work.
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("registry changes need a connection with no open transaction "
                           "(use autocommit=True or commit first)")


def _audit(event: str, **fields: Any) -> None:
    trail.record(event, **fields)


def promote_plan_hash(model_id: int) -> str:
    """What a person approves to promote ``model_id`` directly (``gept models promote``)."""
    return plan_hash({"action": "models-promote", "model_id": model_id})


def rollback_plan_hash(scope: str) -> str:
    """What a person approves to roll ``scope`` back directly (``gept models rollback``)."""
    return plan_hash({"action": "models-rollback", "scope": scope})


def _approved(approved: Approval) -> None:
    if approved.zone != ZONE:  # a verified approval, but for another zone
        raise NeedsCoordination(f"approval is for zone {approved.zone!r}, not {ZONE!r}",
                                zone=ZONE)


def register(conn: psycopg.Connection[Any], *, scope: str, run_id: str, model_path: str,
             artifact_sha256: str, windows_hours: Sequence[int],
             offsets_pct: Sequence[Decimal], feature_names: Sequence[str],
             validation_passed: bool, mean_auc: float | None,
             validation_auc: float | None = None, item_ids: Sequence[int] | None = None,
             n_samples: int | None = None, iterations_used: int | None = None,
             task_type: str | None = None, training_duration_seconds: float | None = None,
             metrics: dict[str, Any] | None = None) -> int:
    """Record a trained model as PENDING; return its id."""
    row = conn.execute(
        "INSERT INTO model_registry (scope, run_id, model_path, artifact_sha256, status, "
        "status_reason, windows_hours, offsets_pct, feature_names, validation_passed, "
        "mean_auc, validation_auc, item_ids, n_samples, iterations_used, task_type, "
        "training_duration_seconds, metrics) VALUES (%s,%s,%s,%s,'PENDING',%s,%s,%s,%s,%s,"
        "%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
        (scope, run_id, model_path, artifact_sha256,
         "registered" if validation_passed else "failed the validation gate",
         list(windows_hours), list(offsets_pct), list(feature_names), validation_passed,
         _auc(mean_auc), _auc(validation_auc), None if item_ids is None else list(item_ids),
         n_samples, iterations_used, task_type, training_duration_seconds,
         Jsonb(json_safe(metrics or {})))).fetchone()
    assert row is not None
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS \
            and not conn.autocommit:
        conn.commit()
    return int(row[0])


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by None (JSONB refuses NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _auc(value: float | None) -> Decimal | None:
    if value is None or value != value:  # NaN
        return None
    return Decimal(f"{value:.4f}")


def get(conn: psycopg.Connection[Any], model_id: int) -> ModelRecord:
    """One model by id.

    Raises:
        InvalidInput: when no such model exists.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM model_registry WHERE id = %s",
                          (model_id,)).fetchone()
    if row is None:
        raise InvalidInput(f"no model with id {model_id}", field="model_id", value=model_id)
    return _record(row)


def list_models(conn: psycopg.Connection[Any], *, scope: str | None = None,
                status: str | None = None, limit: int = 100) -> list[ModelRecord]:
    """Models, newest first, optionally filtered by scope and status."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}",
                           field="status", value=status)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM model_registry WHERE (%(scope)s::text IS NULL OR "
            "scope = %(scope)s) AND (%(status)s::text IS NULL OR status = %(status)s) "
            "ORDER BY id DESC LIMIT %(limit)s",
            {"scope": scope, "status": status, "limit": limit}).fetchall()
    return [_record(r) for r in rows]


def active_models(conn: psycopg.Connection[Any]) -> list[ModelRecord]:
    """Every ACTIVE model (one per scope)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM model_registry WHERE status = 'ACTIVE' "
                           "ORDER BY scope").fetchall()
    return [_record(r) for r in rows]


def _check_promotable(model: ModelRecord, models_dir: Path,
                      conn: psycopg.Connection[Any] | None = None) -> None:
    if not model.validation_passed:
        raise InvalidInput(f"model {model.id} failed its validation gate and can never be "
                           "ACTIVE; train a better one", field="model_id", value=model.id)
    if model.status == "ACTIVE":
        raise InvalidInput(f"model {model.id} is already ACTIVE for {model.scope}",
                           field="model_id", value=model.id)
    if model.status not in PROMOTABLE:
        raise InvalidInput(f"model {model.id} is {model.status}; only "
                           f"{'/'.join(PROMOTABLE)} models can be promoted (archived "
                           "artifacts may be gone: retrain)", field="model_id",
                           value=model.id)
    # Never activate what inference could not load.
    artifacts.read_verified(models_dir, model.model_path, model.artifact_sha256, conn)


def _swap(conn: psycopg.Connection[Any], model: ModelRecord, *, reason: str,
          rollback: bool) -> int | None:
    """In one transaction: deprecate the scope's ACTIVE model, activate ``model``."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('gept-registry:' || %s))",
                     (model.scope,))
        row = conn.execute("SELECT status, validation_passed FROM model_registry "
                           "WHERE id = %s FOR UPDATE", (model.id,)).fetchone()
        if row is None or row[0] not in PROMOTABLE or not row[1]:
            raise Failed(f"model {model.id} changed state while promoting "
                         f"(now {None if row is None else row[0]}); nothing was changed",
                         model_id=model.id)
        old = conn.execute("SELECT id FROM model_registry WHERE scope = %s AND "
                           "status = 'ACTIVE' FOR UPDATE", (model.scope,)).fetchone()
        old_id = None if old is None else int(old[0])
        if old_id is not None:
            conn.execute(
                "UPDATE model_registry SET status = 'DEPRECATED', deprecated_at = now(), "
                "status_changed_at = now(), status_reason = %s WHERE id = %s",
                (f"rolled back to model {model.id}" if rollback else
                 f"replaced by model {model.id}", old_id))
        conn.execute(
            "UPDATE model_registry SET status = 'ACTIVE', activated_at = now(), "
            "status_changed_at = now(), status_reason = %s, deprecated_at = NULL, "
            "sunset_at = NULL, replaces_model_id = CASE WHEN %s THEN replaces_model_id "
            "ELSE %s END WHERE id = %s",
            (reason, rollback, old_id, model.id))
    return old_id


def promote(conn: psycopg.Connection[Any], model_id: int, *, approved: Approval,
            models_dir: Path | None = None, actor: str = "gept models promote") -> Change:
    """Make ``model_id`` the ACTIVE model of its scope (danger zone ``model-registry``).

    Raises:
        NeedsCoordination: the approval is for another zone (exit 3).
        InvalidInput: when the model failed its gate, is ARCHIVED or already ACTIVE.
        IntegrityError: when its artifact fails the checksum.
    """
    _require_idle(conn)
    model = get(conn, model_id)
    _check_promotable(model, _models_dir(models_dir), conn)
    _approved(approved)
    old = _swap(conn, model, reason="promoted", rollback=False)
    _audit("models-promote", zone=ZONE, plan_hash=approved.plan_hash, model_id=model_id,
           scope=model.scope, previous_model_id=old, actor=actor, approved_by=approved.by)
    log.info("model %s is ACTIVE for %s (was %s)", model_id, model.scope, old)
    return Change("promote", model.scope, model_id, old)


def promote_initial(conn: psycopg.Connection[Any], model_id: int, *,
                    models_dir: Path | None = None) -> Change:
    """Activate the first model of an empty registry without an approval (bootstrap only).

    Raises:
        NeedsCoordination: when any scope has an ACTIVE model (use ``promote``).
        InvalidInput / IntegrityError: as for :func:`promote`.
    """
    _require_idle(conn)
    model = get(conn, model_id)
    _check_promotable(model, _models_dir(models_dir), conn)
    plan = promote_plan_hash(model_id)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('gept-registry:' || %s))",
                     (model.scope,))
        # Any ACTIVE model means the engine serves something: a new scope changes it too.
        row = conn.execute("SELECT id, scope FROM model_registry WHERE status = 'ACTIVE' "
                           "ORDER BY id LIMIT 1").fetchone()
        if row is not None:
            raise NeedsCoordination(
                f"the registry already has ACTIVE model {row[0]} ({row[1]}); activating "
                f"model {model_id} needs a person's approval",
                zone=ZONE, plan_hash=plan,
                how=f"gept coordinate approve --zone {ZONE} --plan-hash {plan} --host "
                    f"<inventory>/<host> --reason '...' then gept models promote {model_id} "
                    "--approval <approval>")
        conn.execute(
            "UPDATE model_registry SET status = 'ACTIVE', activated_at = now(), "
            "status_changed_at = now(), status_reason = 'bootstrap: first model of scope' "
            "WHERE id = %s AND validation_passed", (model_id,))
    _audit("models-bootstrap", zone=ZONE, model_id=model_id, scope=model.scope,
           actor="promote_initial")
    return Change("bootstrap", model.scope, model_id, None)


def previous_active(conn: psycopg.Connection[Any], scope: str) -> ModelRecord | None:
    """The model to roll back to: the one the current ACTIVE model replaced, if it is
    still DEPRECATED/SUNSET, else the most recently activated DEPRECATED/SUNSET model that
    was not itself rolled back from. Repeated rollbacks therefore walk back in history.
    """
    current = [m for m in active_models(conn) if m.scope == scope]
    if current and current[0].replaces_model_id is not None:
        candidate = get(conn, current[0].replaces_model_id)
        if candidate.status in ("DEPRECATED", "SUNSET") and candidate.validation_passed:
            return candidate
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM model_registry WHERE scope = %s AND validation_passed "
            "AND status IN ('DEPRECATED', 'SUNSET') AND activated_at IS NOT NULL "
            # A model we rolled back from is not a rollback target (that would be an undo).
            "AND coalesce(status_reason, '') NOT LIKE 'rolled back%%' "
            "ORDER BY activated_at DESC LIMIT 1", (scope,)).fetchone()
    return None if row is None else _record(row)


def rollback(conn: psycopg.Connection[Any], scope: str, *, approved: Approval,
             models_dir: Path | None = None, actor: str = "gept models rollback") -> Change:
    """Restore the previous ACTIVE model of ``scope`` (danger zone ``model-registry``).

    Raises:
        NeedsCoordination: the approval is for another zone (exit 3).
        InvalidInput: when the scope has no ACTIVE model or nothing to roll back to (the
            current model stays: a scope is never left with zero ACTIVE models).
        IntegrityError: when the previous model's artifact fails the checksum.
    """
    _require_idle(conn)
    current = [m for m in active_models(conn) if m.scope == scope]
    if not current:
        raise InvalidInput(f"scope {scope!r} has no ACTIVE model to roll back",
                           field="scope", value=scope)
    target = previous_active(conn, scope)
    if target is None:
        raise InvalidInput(f"scope {scope!r} has no previous model to roll back to; "
                           f"model {current[0].id} stays ACTIVE", field="scope", value=scope)
    _check_promotable(target, _models_dir(models_dir), conn)
    _approved(approved)
    old = _swap(conn, target, reason=f"rollback from model {current[0].id}", rollback=True)
    _audit("models-rollback", zone=ZONE, plan_hash=approved.plan_hash, scope=scope,
           model_id=target.id, previous_model_id=old, actor=actor, approved_by=approved.by)
    return Change("rollback", scope, target.id, old)


def advance_lifecycle(conn: psycopg.Connection[Any], *,
                      now: datetime | None = None) -> dict[str, int]:
    """Age out old models: DEPRECATED > 24 h → SUNSET; SUNSET > 48 h → ARCHIVED.

    Never touches an ACTIVE model, so it needs no token. Returns counts per transition.
    """
    _require_idle(conn)
    now = now or utcnow()
    with conn.transaction():
        sunset = conn.execute(
            "UPDATE model_registry SET status = 'SUNSET', sunset_at = %s, "
            "status_changed_at = %s, status_reason = 'sunset grace period started' "
            "WHERE status = 'DEPRECATED' AND deprecated_at < %s",
            (now, now, now - DEPRECATED_BEFORE_SUNSET)).rowcount
        archived = conn.execute(
            "UPDATE model_registry SET status = 'ARCHIVED', archived_at = %s, "
            "status_changed_at = %s, status_reason = 'grace period expired' "
            "WHERE status = 'SUNSET' AND sunset_at < %s",
            (now, now, now - SUNSET_GRACE)).rowcount
    return {"sunset": sunset, "archived": archived}
