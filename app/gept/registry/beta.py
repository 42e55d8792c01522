"""The beta mark: a registry model that users who opted in (``use_beta_model``) are served.

A model is *beta* when its registry row says ``metrics.beta = true``. The engine reads the
mark with every refresh (seconds): a request with ``use_beta_model=true`` is then served
only the predictions of beta models (and told plainly, in ``X-Gept-Model``, when the newest
batch has none); everyone else is served as before. Inference runs ACTIVE models only, so a
beta model serves anything only while it is ACTIVE for its scope (e.g. an ``item:<id>``
model promoted for a trial).

Marking is a **caution** action, not a danger zone: it changes no model's status, no
prediction and nothing a user who did not opt in sees, and ``--off`` undoes it at once.
So it needs no person's approval (unlike ``promote``/``rollback``, the ``model-registry``
zone), but it is refused for a model that failed its validation gate, and every change is
written to the audit trail with its reason.

Example:
    >>> with connect(autocommit=True) as conn:                         # doctest: +SKIP
    ...     mark(conn, 42, beta=True, reason="trial of the item model").changed
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from gept.core.errors import InvalidInput
from gept.guards import audit as trail
from gept.registry import lifecycle

CLASS = "caution"
"""How the runbook classes would rate this action (safe / caution / danger)."""


@dataclass(frozen=True)
class BetaChange:
    """What ``mark`` did."""

    model_id: int
    scope: str
    status: str
    beta: bool
    changed: bool
    serves: bool
    """Whether the model predicts at all (ACTIVE): a beta mark on another model waits."""

    def to_dict(self) -> dict[str, Any]:
        """As ``gept models beta --json`` prints it."""
        return {**asdict(self), "class": CLASS}


def beta_models(conn: psycopg.Connection[Any]) -> list[int]:
    """Ids of every model marked beta, ascending."""
    rows = conn.execute("SELECT id FROM model_registry WHERE metrics ->> 'beta' = 'true' "
                        "ORDER BY id").fetchall()
    return [int(r[0]) for r in rows]


def mark(conn: psycopg.Connection[Any], model_id: int, *, beta: bool,
         reason: str = "") -> BetaChange:
    """Set (``beta=True``) or clear the beta mark of one model; audited.

    Idempotent: marking a marked model changes nothing (``changed`` is False) but is still
    audited, so the trail shows every attempt.

    Raises:
        InvalidInput: no such model, or (to mark) a model that failed its validation gate.
    """
    model = lifecycle.get(conn, model_id)
    if beta and not model.validation_passed:
        raise InvalidInput(f"model {model_id} failed its validation gate; users who opted in "
                           "to beta must not be served it", field="model_id", value=model_id)
    # jsonb_set keeps the rest of the metrics (training's record) as it is.
    row = conn.execute(
        "UPDATE model_registry SET metrics = jsonb_set(metrics, '{beta}', to_jsonb(%s::bool)) "
        "WHERE id = %s AND coalesce(metrics ->> 'beta' = 'true', false) <> %s RETURNING id",
        (beta, model_id, beta)).fetchone()
    if not conn.autocommit:
        conn.commit()
    change = BetaChange(model_id, model.scope, model.status, beta, row is not None,
                        model.status == "ACTIVE")
    trail.record("models-beta", model_id=model_id, scope=model.scope, beta=beta,
                 changed=change.changed, reason=reason or None, risk=CLASS)
    return change
