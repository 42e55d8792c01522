"""`gept models list|promote|rollback`: the only sanctioned way to change the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from gept.core.output import emit
from gept.guards.approval import Approval

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

app = typer.Typer(help="Model registry: list, promote, roll back, mark beta.",
                  no_args_is_help=True)

_APPROVAL_HELP = "A person's approval for the model-registry zone (gept coordinate approve)."


@app.command("list")
def list_cmd(
    scope: str | None = typer.Option(None, help="Only this scope, e.g. global or item:4151."),
    status: str | None = typer.Option(None, help="Only this status, e.g. ACTIVE."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many models."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List registered models, newest first.

    Example:
        $ gept models list --status ACTIVE --json
    """
    from gept.db.connect import connect
    from gept.registry import lifecycle

    with connect(autocommit=True) as conn:
        models = lifecycle.list_models(conn, scope=scope, status=status, limit=limit)
    lines = [f"{'id':>5}  {'scope':<14} {'status':<10} {'auc':>6}  {'gate':<5} run_id"]
    for m in models:
        auc = "-" if m.mean_auc is None else f"{m.mean_auc:.4f}"
        lines.append(f"{m.id:>5}  {m.scope:<14} {m.status:<10} {auc:>6}  "
                     f"{'pass' if m.validation_passed else 'FAIL':<5} {m.run_id}"
                     + ("  beta" if m.metrics.get("beta") is True else ""))
    emit({"models": [m.to_dict() for m in models]}, as_json, human="\n".join(lines))


@app.command("promote")
def promote_cmd(
    model_id: int = typer.Argument(..., help="Registry id of the model to make ACTIVE."),
    approval: str | None = typer.Option(None, "--approval", help=_APPROVAL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make a model ACTIVE for its scope; the previous ACTIVE model becomes DEPRECATED.

    Needs a person's approval bound to ``{"action": "models-promote", "model_id": N}`` and
    to this host (exit 3 without one, with the plan hash to approve), verified against the
    host's allowed signers. The artifact is checksum-verified first; a model that failed its
    validation gate is refused (exit 2).

    Example:
        $ gept models promote 12 --json          # exit 3: prints zone + plan_hash
        $ gept coordinate approve --zone model-registry --plan-hash <hash> \\
              --host production/hydra --reason "weekly"      # on the person's laptop
        $ gept models promote 12 --approval <approval> --json
    """
    from gept.registry import lifecycle

    change = _approved_change(
        lifecycle.promote_plan_hash(model_id), approval, f"gept models promote {model_id}",
        lambda conn, ok: lifecycle.promote(conn, model_id, approved=ok))
    emit(change.to_dict(), as_json,
         human=f"model {change.activated} is ACTIVE for {change.scope}"
               + (f" (model {change.deprecated} DEPRECATED)" if change.deprecated else ""))


@app.command("rollback")
def rollback_cmd(
    scope: str = typer.Option("global", help="Scope to roll back, e.g. global or item:4151."),
    approval: str | None = typer.Option(None, "--approval", help=_APPROVAL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Restore the previous ACTIVE model of a scope (the current one becomes DEPRECATED).

    Needs a person's approval bound to ``{"action": "models-rollback", "scope": S}``.
    Refused (exit 2) when there is nothing to roll back to: a scope never ends up with zero
    ACTIVE models.

    Example:
        $ gept models rollback --scope global --approval <approval> --json
    """
    from gept.registry import lifecycle

    change = _approved_change(
        lifecycle.rollback_plan_hash(scope), approval, f"gept models rollback {scope}",
        lambda conn, ok: lifecycle.rollback(conn, scope, approved=ok))
    emit(change.to_dict(), as_json,
         human=f"rolled back {change.scope}: model {change.activated} is ACTIVE again "
               f"(model {change.deprecated} DEPRECATED)")


@app.command("beta")
def beta_cmd(
    model_id: int = typer.Argument(..., help="Registry id of the model to mark (or unmark)."),
    off: bool = typer.Option(False, "--off", help="Remove the beta mark instead."),
    reason: str = typer.Option("", "--reason", help="Why, for the audit trail."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Mark a model beta (or unmark it with ``--off``): served to users who opted in.

    A caution action: it changes no model's status and nothing a user who did not opt in
    to beta sees, so no approval is needed (``promote`` and ``rollback`` need one); a model
    that failed its validation gate is refused (exit 2), every change is audited. The
    engine picks the mark up within one refresh. A beta model serves only while ACTIVE.

    Example:
        $ gept models beta 12 --reason "trial of the whip model" --json
        {"model_id": 12, "scope": "item:4151", "status": "ACTIVE", "beta": true, ...}
        $ gept models beta 12 --off
    """
    from gept.db.connect import connect
    from gept.registry import beta

    with connect(autocommit=True) as conn:
        change = beta.mark(conn, model_id, beta=not off, reason=reason)
    state = "beta" if change.beta else "not beta"
    note = "" if change.changed else " (already)"
    waits = "" if change.serves else f"; it is {change.status}, so it serves nobody yet"
    emit(change.to_dict(), as_json, human=f"model {model_id} ({change.scope}) is {state}"
                                          f"{note}{waits}")


def _approved_change(plan_hash: str, approval: str | None, action: str,
                     change: Callable[[psycopg.Connection[Any], Approval], T]) -> T:
    """Verify the approval (`_approved`), then make the change on the configured database."""
    from gept.db.connect import connect

    approved = _approved(plan_hash, approval, action)
    with connect(autocommit=True) as conn:
        return change(conn, approved)


def _approved(plan_hash: str, approval: str | None, action: str) -> Approval:
    """The approval verified on this host (its allowed signers, identity, root's ledger).

    Raises:
        NeedsCoordination: no approval (exit 3, with the plan hash to sign), or one that
            does not allow this.
        ConfigError: this machine is not a converged host (exit 2).
    """
    from gept.guards import coordination
    from gept.registry.lifecycle import ZONE

    if not approval:
        raise coordination.refusal(ZONE, plan_hash, ["<inventory>/<this host>"], action,
                                   "a person's approval is required")
    return coordination.Guard.on_this_host().require(ZONE, plan_hash, approval, action=action)
