"""`gept mcp`: the runbooks as MCP tools for agents."""

from __future__ import annotations


def mcp() -> None:
    """Serve the agent interface over stdio."""
    raise NotImplementedError
