"""`gept registry` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Model registry: list, promote, roll back.", no_args_is_help=True)
