"""Printing results for people and for agents (``--json``), in one shape everywhere."""

from __future__ import annotations

import json
import sys
from typing import Any

from gept.core.errors import GeptError


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """Print ``data`` as one JSON document, or ``human`` text when not in JSON mode.

    Example:
        >>> emit({"ok": True}, as_json=True)
        {"ok": true}
    """
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, sort_keys=False) + "\n")
    else:
        sys.stdout.write((human if human is not None else json.dumps(data, default=str,
                                                                     indent=2)) + "\n")
    sys.stdout.flush()


def emit_error(exc: GeptError, as_json: bool) -> None:
    """Report an error: JSON on stdout for agents, a readable line on stderr for people."""
    if as_json:
        sys.stdout.write(json.dumps(exc.to_dict(), default=str) + "\n")
        sys.stdout.flush()
    sys.stderr.write(f"error: {exc.message}\n")
    sys.stderr.flush()
