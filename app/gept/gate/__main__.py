"""``python -m gept.gate ACTION --plan-hash H --approval A [--model-id N] [--scope S]``.

Exit codes as every command: 0 done, 1 the action failed, 2 bad arguments, 3 refused.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from gept.core.errors import ExitCode, GeptError
from gept.gate.actions import ACTIONS, ARG_PATTERNS, ActionFailed
from gept.guards.coordination import Guard


def journal(decision: dict[str, Any]) -> None:
    """One line in the host's journal (``journalctl -t gept-gate -o cat``)."""
    text = json.dumps(decision, default=str, sort_keys=True)
    try:
        subprocess.run(["/usr/bin/logger", "-t", "gept-gate", "-p", "auth.notice", "--", text],
                       timeout=10, check=False, stdin=subprocess.DEVNULL)
    except OSError:
        sys.stderr.write(f"gept-gate: cannot write the journal: {text}\n")


def parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    """The action and its ``--name value`` options; anything unexpected is refused.

    Raises:
        ValueError: an unknown action, option or malformed value.
    """
    if not argv or argv[0] not in ACTIONS:
        raise ValueError(f"unknown action; known: {', '.join(sorted(ACTIONS))}")
    name, rest = argv[0], argv[1:]
    allowed = {"plan-hash", "approval", *ACTIONS[name].args}
    opts: dict[str, str] = {}
    while rest:
        flag = rest.pop(0)
        if not flag.startswith("--") or flag[2:] not in allowed or not rest or flag[2:] in opts:
            raise ValueError(f"unexpected argument {flag[:40]!r}")
        opts[flag[2:]] = rest.pop(0)
    for arg in ("plan-hash", "approval", *ACTIONS[name].args):
        if arg not in opts:
            raise ValueError(f"--{arg} is required")
    for arg, pattern in ARG_PATTERNS.items():
        if arg in opts and not re.fullmatch(pattern, opts[arg]):
            raise ValueError(f"--{arg} must match {pattern}")
    if not re.fullmatch(r"[0-9a-f]{64}", opts["plan-hash"]):
        raise ValueError("--plan-hash must be 64 hex characters")
    return name, opts


def revoke(argv: list[str], asked_by: str) -> int:
    """``revoke --nonce N``: spend a nonce before anyone uses it. Anyone may revoke: it can
    only make the host refuse more, never allow anything.
    """
    if len(argv) != 2 or argv[0] != "--nonce" or not re.fullmatch(r"[0-9a-f]{32}", argv[1]):
        sys.stderr.write("gept-gate: usage: revoke --nonce <32 hex>\n")
        return ExitCode.INVALID
    from gept.guards.approval import Refused
    from gept.guards.ledger import HOST_LEDGER, Ledger

    try:
        Ledger(HOST_LEDGER).consume(argv[1], {"revoked": True, "by": asked_by})
        outcome = "revoked"
    except Refused:
        outcome = "already spent"
    journal({"asked_by": asked_by, "action": "revoke", "nonce": argv[1], "outcome": outcome})
    sys.stdout.write(json.dumps({"nonce": argv[1], "outcome": outcome}) + "\n")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    """Verify, spend, log, act."""
    args = list(sys.argv[1:] if argv is None else argv)
    asked_by = os.environ.get("SUDO_USER") or str(os.getuid())
    if args[:1] == ["revoke"]:
        return revoke(args[1:], asked_by)
    base: dict[str, Any] = {"asked_by": asked_by, "action": args[0] if args else None}
    try:
        name, opts = parse(args)
    except ValueError as exc:
        journal({**base, "outcome": "invalid", "reason": str(exc)})
        sys.stderr.write(f"gept-gate: {exc}\n")
        return ExitCode.INVALID
    action = ACTIONS[name]
    base.update({"zone": action.zone, "plan_hash": opts["plan-hash"],
                 "args": {k: v for k, v in opts.items() if k in action.args}})
    try:
        guard = Guard.on_this_host()
        base["host"] = guard.hosts[0]
        approval = guard.require(action.zone, opts["plan-hash"], opts["approval"],
                                 action=f"gate {name}")
    except GeptError as exc:
        journal({**base, "outcome": "refused", "reason": exc.details.get("reason", exc.message)})
        sys.stdout.write(json.dumps({**exc.to_dict(), **base, "outcome": "refused"}) + "\n")
        return exc.exit_code
    base.update({"approved_by": approval.by, "nonce": approval.nonce,
                 "reason_given": approval.reason})
    try:
        result = action.run(approval, opts)
    except (ActionFailed, GeptError, OSError, subprocess.SubprocessError) as exc:
        journal({**base, "outcome": "failed", "error": str(exc)[:500]})
        sys.stdout.write(json.dumps({**base, "outcome": "failed", "error": str(exc)}) + "\n")
        return ExitCode.FAILED
    journal({**base, "outcome": "done", "result": result[:500]})
    sys.stdout.write(json.dumps({**base, "outcome": "done", "result": result}) + "\n")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
