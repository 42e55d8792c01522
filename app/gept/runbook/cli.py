"""`gept runbook` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Executable YAML runbooks through Fabric.", no_args_is_help=True)

coordinate_app = typer.Typer(help="Coordination tokens for danger zones.", no_args_is_help=True)
