"""Judging results: whether one command did what its step expects, and a triage verdict."""

from __future__ import annotations

import re
from typing import Any

from gept.runbook.model import Runbook
from gept.runbook.plan import Action
from gept.runbook.transport import Outcome


def judge(out: Outcome, action: Action) -> tuple[bool, str]:
    """(ok, why not) for one command's outcome: exit status, HTTP status/body, expected output.

    Example:
        >>> judge(Outcome(0, "ok\\n200", "", 0.1), Action("c", "c", http_status=200))
        (True, '')
    """
    if out.error is not None:
        return False, out.error
    stdout = out.stdout
    if action.http_status is not None:
        body, _, code = stdout.rstrip("\n").rpartition("\n")
        if out.exit != 0:
            return False, f"curl exit {out.exit}: {out.stderr.strip()[-200:]}"
        if code.strip() != str(action.http_status):
            return False, f"HTTP {code.strip() or '?'} (expected {action.http_status})"
        if action.http_contains is not None and action.http_contains not in body:
            return False, f"response does not contain {action.http_contains!r}"
        return True, ""
    if out.exit != 0:
        detail = (out.stderr.strip() or out.stdout.strip())[-300:]
        return False, f"exit {out.exit}: {detail}"
    if action.expect is not None and not re.search(action.expect, stdout):
        return False, f"output does not match {action.expect!r}: {stdout.strip()[-200:]!r}"
    return True, ""


def evaluate_verdict(runbook: Runbook, hosts: dict[str, dict[str, Any]],
                     failed_steps: set[str], passed: dict[str, bool]) -> dict[str, Any] | None:
    """The first verdict rule that holds: ``{"verdict": ..., "next": ...}`` (None: no rules).

    ``failed`` holds when any listed step failed on any host, ``passed`` when all listed
    steps passed on every host, ``matches`` when each output matches on some host.
    """
    outputs: dict[str, list[str]] = {}
    for data in hosts.values():
        for k, v in data["outputs"].items():
            outputs.setdefault(k, []).append(v)
    for rule in runbook.verdict:
        cond = rule.when
        if cond is not None:
            if cond.failed and not any(n in failed_steps for n in cond.failed):
                continue
            if cond.passed and not all(passed.get(n) for n in cond.passed):
                continue
            if cond.matches and not all(any(re.search(rx, v) for v in outputs.get(k, []))
                                        for k, rx in cond.matches.items()):
                continue
        return {"verdict": rule.verdict, "next": rule.next}
    return None
