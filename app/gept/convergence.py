"""Running the deploys with pyinfra, and reading its ``--json``: the one place that does.

``converge`` applies (``pyinfra -y --json``) and ``plan`` only reads facts (``pyinfra --dry
--json``); `gept drift`, ``make demo``, the lab tests and the benchmarks all go through them.

Example:
    >>> result = converge(Path("inventory/lab.py"))     # doctest: +SKIP
    >>> result.returncode, result.changes                # doctest: +SKIP
    (0, 0)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LAB_INVENTORY = REPO / "inventory" / "lab.py"
SITE = "deploys/site.py"
CONVERGE_TIMEOUT = 1500.0
TIMED_OUT = 124  # the exit status reported for a run that timed out, as timeout(1) does


@dataclass(frozen=True)
class PyinfraRun:
    """One pyinfra process: its exit status, its parsed ``--json`` document, its stderr."""

    returncode: int
    seconds: float
    doc: dict[str, Any]
    stderr: str
    stdout: str


def run_pyinfra(args: list[str], *, timeout: float, env: Mapping[str, str] | None = None,
                unset: tuple[str, ...] = ()) -> PyinfraRun:
    """``pyinfra --json ARGS`` from the repository root, with this interpreter's pyinfra.

    Args:
        args: pyinfra's arguments after ``--json``.
        timeout: seconds before the run is stopped.
        env: variables over this process's environment.
        unset: variables removed from it.

    Never raises on pyinfra's exit status or a timeout (``returncode`` 124); ``doc`` is
    ``{}`` when stdout is not JSON.
    """
    pyinfra = Path(sys.executable).with_name("pyinfra")
    cmd = [str(pyinfra), "--json", *args]
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env=environ, check=False)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = TIMED_OUT, ""
        tail = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        err = f"pyinfra timed out after {timeout:.0f} s\n{tail}"
    try:
        doc = json.loads(out) if out.strip() else {}
    except ValueError:
        doc = {}
    return PyinfraRun(code, time.monotonic() - started, doc if isinstance(doc, dict) else {},
                      err or "", out)


@dataclass(frozen=True)
class ConvergeResult:
    """One ``pyinfra -y --json`` run of the deploys."""

    returncode: int
    seconds: float
    totals: dict[str, Any]
    changed: dict[str, list[str]]  # operation name -> hosts it changed
    stderr: str

    @property
    def changes(self) -> int:
        """How many (operation, host) pairs changed something."""
        return sum(len(hosts) for hosts in self.changed.values())


def converge(inventory: Path = LAB_INVENTORY, deploys: tuple[str, ...] = (SITE,),
             extra_args: tuple[str, ...] = (), timeout: float = CONVERGE_TIMEOUT,
             env: dict[str, str] | None = None) -> ConvergeResult:
    """Apply the deploys (``pyinfra -y --json``) and parse pyinfra's results.

    Never raises on pyinfra's exit status: callers assert on ``returncode`` (3 is a
    danger-zone refusal). A timeout is reported as ``returncode`` 124.
    """
    run = run_pyinfra(["-y", str(inventory), *deploys, *extra_args], timeout=timeout, env=env)
    results = run.doc.get("results") or {}
    changed = {str(op.get("name")): list(op["success"])
               for op in results.get("operations") or [] if op.get("success")}
    return ConvergeResult(run.returncode, run.seconds, dict(results.get("totals") or {}),
                          changed, run.stderr)


def plan(inventory: Path, deploys: list[str], *, timeout: float = 600.0,
         extra_args: list[str] | None = None) -> PyinfraRun:
    """The deploys in plan mode (``pyinfra --dry --json``): facts read, nothing executed.

    Plan mode is pyinfra's own ``--dry`` (the deploys' guard reads pyinfra's parse of its
    command line); no variable of ours can make a run a plan, and ``PYINFRA_YES`` is dropped.
    """
    return run_pyinfra(["--dry", str(inventory.resolve()), *deploys, *(extra_args or [])],
                       timeout=timeout, env={"PYINFRA_PROGRESS": "off"},
                       unset=("PYINFRA_YES",))
