"""`gept mcp`: the runbooks as MCP tools for AI agents, over stdio.

Tools: ``list_runbooks``, ``show_runbook``, ``plan_runbook``, ``run_runbook``,
``coordination_status``, and one ``run_<runbook>`` per runbook whose annotations follow its
class (safe: read-only and idempotent; caution: not read-only, not destructive; danger:
destructive). Hints are only hints: the server enforces the same guards as the CLI, so an
agent can never run a danger zone without a token a *person* made with
``gept coordinate approve`` (no tool approves, and token values are never returned).

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

from gept.core.errors import GeptError


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = fn(*args, **kwargs)
    except GeptError as exc:
        return exc.to_dict()
    return result


def build_server(inventory: Path | None = None, directory: Path | None = None) -> Any:
    """The MCP server with every tool registered (not started).

    Example:
        >>> server = build_server(Path("inventory/lab.py"))  # doctest: +SKIP
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    from gept import guards
    from gept.runbook import loader, service

    server: Any = MCPServer(
        name="gept-runbooks",
        instructions=(
            "GePT operational runbooks. Always plan_runbook first and show the plan to the "
            "user. Runbooks of class danger are refused (status needs_coordination) until a "
            "person runs the printed `how` command and gives you the token; never guess one."),
    )
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                idempotent_hint=True, open_world_hint=False)

    def list_runbooks() -> dict[str, Any]:
        """List runbooks: name, class (safe/caution/danger), zones, parameters."""
        return _guarded(lambda: {"status": "ok",
                                 "runbooks": service.list_runbooks(directory)})

    def show_runbook(name: str) -> dict[str, Any]:
        """The full definition of one runbook."""
        return _guarded(lambda: {"status": "ok", **service.show(name, directory)})

    def plan_runbook(name: str, params: dict[str, str] | None = None,
                     target: str | None = None) -> dict[str, Any]:
        """Render the exact commands per host and the plan hash. Touches nothing."""
        return _guarded(lambda: {"status": "planned",
                                 **service.plan(name, params or {}, target, inventory,
                                                directory)})

    def _run(name: str, params: dict[str, str] | None, target: str | None,
             token: str | None) -> dict[str, Any]:
        return _guarded(service.run, name, params or {}, target, inventory, token, directory)

    def run_runbook(name: str, params: dict[str, str] | None = None, target: str | None = None,
                    token: str | None = None) -> dict[str, Any]:
        """Run a runbook. Danger-zone runbooks need a token a person made for this plan."""
        return _run(name, params, target, token)

    def coordination_status() -> dict[str, Any]:
        """Coordination tokens (id, zone, plan hash, state, expiry) and the danger zones.
        Token values are never shown; only a person can approve one."""
        return _guarded(lambda: {"status": "ok", "zones": list(guards.ZONES),
                                 "tokens": guards.list_tokens()})

    for fn in (list_runbooks, show_runbook, plan_runbook, coordination_status):
        server.add_tool(fn, annotations=read_only)
    server.add_tool(run_runbook, annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False,
        open_world_hint=False))
    try:
        catalog = loader.load_dir(directory)
    except GeptError:
        return server  # the generic tools still answer, with the validation error
    for rb in catalog.runbooks.values():
        hints = service.HINTS[rb.class_]
        annotations = ToolAnnotations(read_only_hint=hints["readOnlyHint"],
                                      destructive_hint=hints["destructiveHint"],
                                      idempotent_hint=hints["idempotentHint"],
                                      open_world_hint=False)

        def make_runner(name: str) -> Any:
            def runner(params: dict[str, str] | None = None, target: str | None = None,
                       token: str | None = None) -> dict[str, Any]:
                return _run(name, params, target, token)

            return runner

        summary = rb.description.strip().split(". ")[0]
        server.add_tool(make_runner(rb.name), name="run_" + rb.name.replace("-", "_"),
                        description=f"[{rb.class_}] {summary}. Parameters: "
                                    f"{sorted(rb.parameters) or 'none'}.",
                        annotations=annotations)
    return server


def mcp(
    inventory: Path | None = typer.Option(None, "--inventory", "-i",
                                          help="pyinfra inventory (default $GEPT_INVENTORY "
                                               "or inventory/production.py)."),
    directory: Path | None = typer.Option(None, "--dir", help="Runbooks directory."),
) -> None:
    """Serve the runbooks to agents over stdio (MCP). Same guards as the CLI.

    Example:
        $ gept mcp --inventory inventory/lab.py
    """
    build_server(inventory, directory).run("stdio")
