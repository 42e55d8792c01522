"""`gept market` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Market: the OSRS Wiki client and the simulator.", no_args_is_help=True)
