"""`gept infer`."""

from __future__ import annotations

import typer

from gept.core.output import emit


def infer(
    role: str = typer.Option("primary", "--role",
                             help="primary (Hydra) or fallback (Ampere: writes only when "
                                  "predictions are older than GEPT_STALE_AFTER_SECONDS)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predict the latest 5-minute block for every item and write one predictions batch.

    Loads the ACTIVE models (checksum-verified), computes features for all items in one
    pass, and writes the batch with binary COPY in one transaction with its
    ``prediction_batches`` row. A PostgreSQL advisory lock makes primary and fallback on any
    host mutually exclusive; a block is never written twice. Exit 0 when written or skipped
    (fallback with fresh predictions, block already written); 4 when the primary finds
    another writer holding the lock; 1 on failure (recorded in ``inference_runs``).

    Example:
        $ gept infer --role primary --json
        $ GEPT_STALE_AFTER_SECONDS=600 gept infer --role fallback
    """
    from gept.inference.runner import run_inference

    result = run_inference(role)
    human = f"{result.role}: {result.status}"
    if result.status == "completed":
        human += (f" — {result.rows_written} rows for {result.items_predicted} items at "
                  f"{result.block_time} in {result.timings.get('total')} s")
    elif result.reason:
        human += f" — {result.reason}"
    emit(result.to_dict(), as_json, human=human)
