"""`gept mcp`: the runbooks as MCP tools for AI agents, over stdio.

Tools: ``list_runbooks``, ``show_runbook``, ``plan_runbook``, ``run_runbook``,
``coordination_status``, and one ``run_<runbook>`` per runbook whose annotations follow its
class (safe: read-only and idempotent; caution: not read-only, not destructive; danger:
destructive). Hints are only hints: the server enforces the same guards as the CLI, and the
hosts enforce them again, so an agent can never act in a danger zone without an approval a
*person* signed with ``gept coordinate approve`` (no tool approves; nothing here can sign).

The catalogue is the pinned one (``runbooks/catalogue.lock``), loaded **once** when the server
starts: a runbook file written later is neither offered nor run, and there is no ``--dir``.

Every tool returns one JSON object with a ``status``; errors become
``{"status": "invalid" | "needs_coordination" | "locked" | "failed", ...}`` instead of
exceptions, so an agent can act on them (e.g. show ``how`` to a person).

Example:
    $ gept mcp --inventory inventory/lab.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from gept.core.controller import INVENTORY_HELP
from gept.core.errors import GeptError


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = fn(*args, **kwargs)
    except GeptError as exc:
        return exc.to_dict()
    return result


def build_server(inventory: Path | None = None) -> Any:
    """The MCP server with every tool registered (not started).

    Example:
        >>> server = build_server(Path("inventory/lab.py"))  # doctest: +SKIP
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    from gept.guards.zones import ZONES
    from gept.runbook import catalogue, service

    try:
        pinned: catalogue.Pinned | None = catalogue.load_pinned()
        load_error: dict[str, Any] | None = None
    except GeptError as exc:
        pinned, load_error = None, exc.to_dict()

    server: Any = MCPServer(
        name="gept-runbooks",
        instructions=(
            "GePT operational runbooks. Always plan_runbook first and show the plan to the "
            "user. Runbooks of class danger are refused (status needs_coordination) until a "
            "person runs the printed `how` command (signing with their own SSH key) and gives "
            "you the approval; you cannot make one."),
    )
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                idempotent_hint=True, open_world_hint=False)

    def list_runbooks() -> dict[str, Any]:
        """List runbooks: name, class (safe/caution/danger), zones, parameters."""
        return _guarded(lambda: {"status": "ok",
                                 "runbooks": service.list_runbooks(pinned=_pinned())})

    def _pinned() -> catalogue.Pinned:
        if pinned is None:
            from gept.core.errors import InvalidInput

            error = load_error or {}
            raise InvalidInput(f"the pinned catalogue did not load: {error.get('message')}",
                               problems=error.get("problems", []))
        return pinned

    def show_runbook(name: str) -> dict[str, Any]:
        """The full definition of one runbook."""
        return _guarded(lambda: {"status": "ok", **service.show(name, pinned=_pinned())})

    def plan_runbook(name: str, params: dict[str, str] | None = None,
                     target: str | None = None) -> dict[str, Any]:
        """Render the exact commands per host and the plan hash. Touches nothing."""
        return _guarded(lambda: {"status": "planned",
                                 **service.plan(name, params or {}, target, inventory,
                                                pinned=_pinned())})

    def _run(name: str, params: dict[str, str] | None, target: str | None,
             approval: str | None) -> dict[str, Any]:
        return _guarded(lambda: service.run(name, params or {}, target, inventory,
                                            [approval] if approval else [],
                                            pinned=_pinned()))

    def run_runbook(name: str, params: dict[str, str] | None = None, target: str | None = None,
                    approval: str | None = None) -> dict[str, Any]:
        """Run a runbook. Danger-zone runbooks need an approval a person signed for this plan."""
        return _run(name, params, target, approval)

    def coordination_status() -> dict[str, Any]:
        """The danger zones, and how a person approves one (only a person can)."""
        return _guarded(lambda: {"status": "ok", "zones": list(ZONES),
                                 "how": "gept runbook plan <name> --json > plan.json; "
                                        "gept coordinate approve --plan plan.json --reason ..."})

    for fn in (list_runbooks, show_runbook, plan_runbook, coordination_status):
        server.add_tool(fn, annotations=read_only)
    server.add_tool(run_runbook, annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False,
        open_world_hint=False))
    if pinned is None:
        return server  # the generic tools still answer, with the validation error
    for rb in pinned.catalog.runbooks.values():
        hints = service.HINTS[rb.class_]
        annotations = ToolAnnotations(read_only_hint=hints["readOnlyHint"],
                                      destructive_hint=hints["destructiveHint"],
                                      idempotent_hint=hints["idempotentHint"],
                                      open_world_hint=False)

        def make_runner(name: str) -> Any:
            def runner(params: dict[str, str] | None = None, target: str | None = None,
                       approval: str | None = None) -> dict[str, Any]:
                return _run(name, params, target, approval)

            return runner

        summary = rb.description.strip().split(". ")[0]
        server.add_tool(make_runner(rb.name), name="run_" + rb.name.replace("-", "_"),
                        description=f"[{rb.class_}] {summary}. Parameters: "
                                    f"{sorted(rb.parameters) or 'none'}.",
                        annotations=annotations)
    return server


def mcp(
    inventory: Path | None = typer.Option(None, "--inventory", "-i", help=INVENTORY_HELP),
) -> None:
    """Serve the runbooks to agents over stdio (MCP). Same guards as the CLI.

    Example:
        $ gept mcp --inventory inventory/lab.py
    """
    build_server(inventory).run("stdio")
