"""`gept lab` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="The lab: a two-host copy of production on this machine.", no_args_is_help=True)
