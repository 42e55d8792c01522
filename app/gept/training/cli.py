"""`gept train`."""

from __future__ import annotations

import typer

from gept.core.output import emit


def train(
    items: int | None = typer.Option(None, "--items", help="Train on the N most traded items "
                                     "(default GEPT_TRAIN_ITEMS or 20)."),
    days: int | None = typer.Option(None, "--days", help="Days of history (default 14)."),
    iterations: int | None = typer.Option(None, "--iterations",
                                          help="CatBoost iterations (default 100)."),
    depth: int | None = typer.Option(None, "--depth", help="Tree depth (default 6)."),
    task_type: str | None = typer.Option(None, "--task-type",
                                         help="CPU or GPU (default GEPT_TASK_TYPE)."),
    grid: str | None = typer.Option(None, "--grid",
                                    help="default (7x6=42 targets) or production (18x6=108)."),
    scope: str = typer.Option("global", "--scope",
                              help="global: one grouped model; item: one model per item."),
    min_auc: float | None = typer.Option(None, "--min-auc",
                                         help="Validation gate (default GEPT_TRAIN_MIN_AUC "
                                              "or 0.55)."),
    promote: bool = typer.Option(False, "--promote",
                                 help="Activate passing models: approval-free only for an "
                                      "empty registry, otherwise needs --approval."),
    token: str | None = typer.Option(None, "--approval",
                                     help="A person's approval for --promote (model-registry)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train CatBoost multi-target models, gate them and register the ones that pass.

    Writes a ``training_jobs`` row, saves artifacts under GEPT_MODELS_DIR with their sha256
    in ``model_registry`` (status PENDING). Exit 1 when no model passes the gate.
    ``--promote`` activates a passing model when the registry has no ACTIVE model at all
    (bootstrap); any other activation (a new item scope included) needs a person's approval,
    without one the model stays PENDING and the output says so.

    Example:
        $ GEPT_TASK_TYPE=CPU gept train --items 10 --days 10 --iterations 50 --json
        $ GEPT_TASK_TYPE=GPU gept train --items 400 --days 180 --grid production --promote
    """
    from gept.core.config import get_settings
    from gept.db.connect import connect
    from gept.training.config import TrainingSettings, resolve
    from gept.training.trainer import run_training

    settings = get_settings()
    cfg = resolve(TrainingSettings(), task_type=(task_type or settings.task_type).upper(),
                  items=items, days=days, iterations=iterations, depth=depth, grid=grid,
                  scope=scope, min_auc=min_auc)
    with connect(autocommit=True, attempts=3) as conn:
        result = run_training(conn, cfg, models_dir=settings.models_dir, promote=promote,
                              token=token)
    lines = [f"run {result['run_id']}: {result['items']} items, {result['targets']} targets, "
             f"{result['samples']} samples, {result['seconds']} s ({result['task_type']})"]
    for m in result["models"]:
        lines.append(f"  {m['scope']}: model {m['model_id']} {m['status']}, mean AUC "
                     f"{m['mean_auc']}, Brier {m['brier']}, gate: {m['gate']}"
                     + (f"; {m['promotion']}" if "promotion" in m else ""))
    emit(result, as_json, human="\n".join(lines))
