"""Which registry model serves a request: the active ones, a beta one, or the one asked for.

Inference writes one model's predictions per item and batch (the item's own ACTIVE model,
else the global one), so choosing a model is choosing among the items it predicts:

* W1/W5 (``use_beta_model``): only the items of models marked beta
  (:mod:`gept.registry.beta`), or, when the newest batch has none, every item as usual;
* W6 (``model_id``, ``use_beta_model``): the trade's item has one model in the batch; it is
  the one asked for (``model_id`` wins when it matches, as in the original engine), a beta
  one, or, plainly said, the active one instead.

The answer's shape never says which: ``X-Gept-Model`` does (``active``, ``beta 12``,
``model 12``, with the reason in parentheses when the request could not be followed).

Example:
    >>> order_model(12, frozenset({12}), item_id=4151, model_id=None, use_beta=True)
    'beta 12'
    >>> order_model(12, frozenset(), item_id=4151, model_id="7", use_beta=False)
    'active 12 (model 7 has no predictions for item 4151 in the newest batch)'
"""

from __future__ import annotations

from gept.engine.cache import Snapshot

NO_BETA = "no beta model in the registry's newest batch"


def model_selection(snap: Snapshot, use_beta: bool) -> tuple[frozenset[int] | None, str]:
    """Which model ids to serve (None: all) and the ``X-Gept-Model`` header saying so."""
    if not use_beta:
        return None, "active"
    if snap.beta_model_ids:
        return snap.beta_model_ids, "beta " + ",".join(str(i) for i in sorted(snap.beta_model_ids))
    return None, f"active ({NO_BETA})"


def order_model(served: int | None, beta_ids: frozenset[int], *, item_id: int,
                model_id: str | None, use_beta: bool) -> str:
    """The ``X-Gept-Model`` of W6 advice computed from model ``served``'s predictions.

    ``model_id`` is the trade's model as the web app stored it (a string; ours are
    integers). It is followed when it is the item's model; otherwise ``use_beta`` is.
    """
    kind = "beta" if served in beta_ids else "active"
    here = f"{kind} {served}"
    asked = (model_id or "").strip()
    if asked:
        if asked == str(served):
            return f"model {served}"
        why = f"model {asked} has no predictions for item {item_id} in the newest batch"
        if use_beta and kind != "beta":
            why += "; no beta model predicts it either"
        return f"{here} ({why})"
    if use_beta and kind != "beta":
        return f"{here} (no beta model predicts item {item_id} in the newest batch)"
    return here
