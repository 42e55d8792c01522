"""The root ``gept`` command. Mounts every sub-CLI; the only place logging is configured.

Sub-CLI modules keep heavy imports (CatBoost, FastAPI, pyinfra) inside their command
functions so that ``gept --help`` and quick commands start fast.

Example:
    $ gept --help
    $ gept db migrate --json
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from gept import __version__
from gept.core import logging as gept_logging
from gept.core.config import get_settings
from gept.core.errors import ExitCode, GeptError
from gept.core.output import emit_error

app = typer.Typer(
    name="gept",
    help="GePT Ops: deploys, runbooks, checks and the GePT services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (name, module): the module exposes a ``typer.Typer`` called ``app``.
SUB_APPS: list[tuple[str, str, str]] = [
    ("db", "gept.db.cli", "app"),
    ("collect", "gept.collectors.cli", "app"),
    ("market", "gept.market.cli", "app"),
    ("models", "gept.registry.cli", "app"),
    ("runbook", "gept.runbook.cli", "app"),
    ("coordinate", "gept.runbook.cli", "coordinate_app"),
    ("lab", "gept.lab.cli", "app"),
    ("web", "gept.engine.webenv", "app"),
]
# (name, module, function): single commands mounted at the top level.
COMMANDS: list[tuple[str, str, str]] = [
    ("train", "gept.training.cli", "train"),
    ("infer", "gept.inference.cli", "infer"),
    ("serve", "gept.engine.cli", "serve"),
    ("check", "gept.check", "check"),
    ("drift", "gept.drift", "drift"),
    ("mcp", "gept.runbook.mcp", "mcp"),
    ("audit", "gept.guards.report", "audit_cmd"),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """GePT Ops."""
    settings = get_settings()
    gept_logging.configure("DEBUG" if verbose else settings.log_level, settings.log_json)


def _mount() -> None:
    for name, module, attr in SUB_APPS:
        sub: Any = getattr(importlib.import_module(module), attr)
        app.add_typer(sub, name=name)
    for name, module, attr in COMMANDS:
        func: Any = getattr(importlib.import_module(module), attr)
        app.command(name)(func)


_mount()


def main() -> None:
    """Console-script entry point: runs the CLI and maps errors to exit codes.

    Usage errors exit 2 (click's own handling); ``GeptError`` exits with its code and,
    under ``--json``, prints a JSON body on stdout for agents.
    """
    as_json = "--json" in sys.argv
    try:
        app()
    except GeptError as exc:
        emit_error(exc, as_json)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(ExitCode.FAILED)


if __name__ == "__main__":
    main()
