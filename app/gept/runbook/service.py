"""The runbook operations shared by the CLI and the MCP server (one implementation, one set of
guards): list, show, validate, plan, run.

Example:
    >>> [r["name"] for r in list_runbooks()][:2]  # doctest: +SKIP
    ['check-health', 'deploy-engine']
    >>> plan("restart-collector", {"collector": "5m"})["plan_hash"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from gept.core.controller import inventory_path
from gept.core.errors import InvalidInput
from gept.inventory import Host, select_hosts
from gept.runbook import catalogue, loader
from gept.runbook.catalogue import Pinned
from gept.runbook.model import Runbook
from gept.runbook.plan import Plan, make_plan
from gept.runbook.runner import run_plan

HINTS: dict[str, dict[str, bool]] = {
    # MCP tool annotations per class (hints only; the guards are enforced server-side).
    "safe": {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True},
    "caution": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False},
    "danger": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False},
}


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` → dict; a pair without ``=`` is refused (exit 2).

    Example:
        >>> parse_params(["collector=5m", "lines=20"])
        {'collector': '5m', 'lines': '20'}
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {pair!r} must look like name=value", field="params")
        if key in out:
            raise InvalidInput(f"--param {key!r} given twice", field=f"params.{key}")
        out[key.strip()] = value
    return out


def summary(rb: Runbook) -> dict[str, Any]:
    """One runbook as a list entry."""
    return {"name": rb.name, "class": rb.class_, "zones": list(rb.zones),
            "targets": rb.targets, "description": rb.description.strip(),
            "parameters": {k: {"type": p.type, "required": p.required, "secret": p.secret,
                               **({"enum": p.enum} if p.enum else {}),
                               **({"default": p.default} if p.default is not None else {})}
                           for k, p in rb.parameters.items()},
            "hints": HINTS[rb.class_]}


def list_runbooks(directory: Path | None = None,
                  pinned: Pinned | None = None) -> list[dict[str, Any]]:
    """Every runbook of the caller's catalogue, validated, as summaries."""
    catalog = (pinned or catalogue.load(directory)).catalog
    return [summary(catalog.runbooks[n]) for n in sorted(catalog.runbooks)]


def show(name: str, directory: Path | None = None,
         pinned: Pinned | None = None) -> dict[str, Any]:
    """The full definition of one runbook (as in its YAML, validated)."""
    catalog = (pinned or catalogue.load(directory)).catalog
    rb = catalog.get(name)
    return {**summary(rb), "file": str(catalog.files[name]),
            "definition": rb.model_dump(by_alias=True, exclude_defaults=True)}


def validate(paths: list[Path] | None = None, directory: Path | None = None) -> dict[str, Any]:
    """Validate files (or the whole directory, with references). Raises on any problem."""
    if paths:  # every file's problems, not the first file's only
        names, problems = [], []
        for path in paths:
            try:
                names.append(loader.load_file(path).name)
            except InvalidInput as exc:
                problems.extend(loader.problems_of(exc, path))
        if problems:
            raise loader.fail(problems)
    else:
        names = sorted(loader.load_dir(directory).runbooks)
    result: dict[str, Any] = {"status": "valid", "runbooks": names}
    if directory is None and not paths and catalogue.pin_text() != _read(catalogue.PIN_FILE):
        result["pin"] = "stale: run `gept runbook pin` (agents refuse the changed files)"
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def build_plan(name: str, params: Mapping[str, Any], target: str | None = None,
               inventory: Path | str | None = None, directory: Path | None = None,
               pinned: Pinned | None = None) -> Plan:
    """Validate and render a runbook for its hosts (nothing connects).

    ``pinned`` is a catalogue loaded once (``gept mcp``); otherwise the caller's catalogue
    is loaded now (:func:`gept.runbook.catalogue.load`: pinned, or a person's ``--dir``).
    """
    source = pinned or catalogue.load(directory)
    catalog = source.catalog
    rb = catalog.get(name)
    inv = inventory_path(inventory)

    def hosts_for(selector: str) -> list[Host]:
        return select_hosts(inv, selector)

    return make_plan(catalog, name, params, hosts_for(target or rb.targets), hosts_for,
                     inventory=inv, catalogue=source.digest)


def plan(name: str, params: Mapping[str, Any], target: str | None = None,
         inventory: Path | str | None = None, directory: Path | None = None,
         pinned: Pinned | None = None) -> dict[str, Any]:
    """The plan as JSON: commands per host, the plan hash, the approvals it needs."""
    return build_plan(name, params, target, inventory, directory, pinned).to_dict()


def run(name: str, params: Mapping[str, Any], target: str | None = None,
        inventory: Path | str | None = None, approvals: list[str] | None = None,
        directory: Path | None = None,
        on_event: Callable[[str], None] | None = None,
        pinned: Pinned | None = None) -> dict[str, Any]:
    """Plan and run; danger zones are refused without a person's approval (exit 3)."""
    built = build_plan(name, params, target, inventory, directory, pinned)
    return run_plan(built, approvals=approvals or [], on_event=on_event)
