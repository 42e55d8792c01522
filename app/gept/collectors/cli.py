"""`gept collectors` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Collectors: fetch market data into PostgreSQL.", no_args_is_help=True)
