"""Run locks: one run of a lock scope per host, enforced on the controller *and* on the host.

The controller lock is an ``flock`` on ``$GEPT_STATE_DIR/locks/<scope>@<host>.lock`` (released
by the kernel if the process dies). The host lock is a directory made with ``mkdir`` (atomic)
under the host's lock dir, holding ``holder.json``; it stops a second controller too. A host
lock whose holder's ``expires`` has passed (the holder died) is broken and the break audited.

A run that finds either lock held raises :class:`~gept.core.errors.Locked` (exit 4) naming the
holder: run id, runbook, pid, user, controller and since when.

Example:
    >>> with ControllerLock("restart-engine", "ampere", holder):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from gept.core.errors import Locked
from gept.guards import audit as trail

_BROKEN = "LOCK_BROKEN"


def lock_root() -> Path:
    """This account's controller locks (the hosts' locks are the shared ones)."""
    return Path("~/.local/state/gept/locks").expanduser()


def holder_record(run_id: str, runbook: str, budget_seconds: float) -> dict[str, Any]:
    """Who holds a lock, and until when it may be considered alive."""
    now = time.time()
    return {"run_id": run_id, "runbook": runbook, "pid": os.getpid(),
            "user": trail.actor(), "controller": os.uname().nodename,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "expires": int(now + budget_seconds)}


def describe(holder: dict[str, Any] | None) -> str:
    """A one-line description of a lock holder for messages."""
    if not holder:
        return "an unknown holder (the lock was just taken)"
    return (f"run {holder.get('run_id')} of {holder.get('runbook')} by {holder.get('user')} "
            f"(pid {holder.get('pid')} on {holder.get('controller')}) since {holder.get('since')}")


class ControllerLock:
    """An exclusive, non-blocking ``flock`` for one scope on one host."""

    def __init__(self, scope: str, host: str, holder: dict[str, Any]) -> None:
        self.path = lock_root() / f"{scope}@{host}.lock"
        self.scope, self.host, self.holder = scope, host, holder
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``Locked`` (exit 4) naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            try:
                holder = json.loads(fh.read() or "null")
            except ValueError:
                holder = None
            fh.close()
            raise Locked(f"{self.scope} on {self.host} is locked by {describe(holder)}",
                         scope=self.scope, host=self.host, holder=holder,
                         where="controller") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(self.holder))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Release (idempotent)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.truncate(0)
                fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ControllerLock:
        self.acquire()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def host_acquire_command(lock_dir: str, scope: str, holder: dict[str, Any],
                         audit_log: str, audit_lines: list[str]) -> str:
    """One shell command: take the host lock (mkdir) and append the first audit lines.

    Prints ``ACQUIRED`` or the holder JSON then ``HELD``. An expired holder is broken first
    (printing ``LOCK_BROKEN``). One round trip keeps the runner's overhead small.
    """
    d = f"{lock_dir.rstrip('/')}/{scope}.lock"
    qd, qh = shlex.quote(d), shlex.quote(json.dumps(holder))
    now_check = (f"exp=$(sed -n 's/.*\"expires\": *\\([0-9]*\\).*/\\1/p' {qd}/holder.json "
                 f"2>/dev/null); if [ -n \"$exp\" ] && [ \"$exp\" -lt \"$(date +%s)\" ]; then "
                 f"rm -rf {qd}; echo {_BROKEN}; fi")
    take = (f"if mkdir {qd} 2>/dev/null; then printf '%s' {qh} > {qd}/holder.json; "
            f"echo ACQUIRED; else cat {qd}/holder.json 2>/dev/null; echo; echo HELD; fi")
    return (f"mkdir -p {shlex.quote(lock_dir)} && {{ {now_check}; }} && {take}"
            f" && {append_command(audit_log, audit_lines)}")


def host_release_command(lock_dir: str, scope: str, run_id: str, audit_log: str,
                         audit_lines: list[str]) -> str:
    """One shell command: append the audit lines, then remove our lock (only if ours)."""
    qd = shlex.quote(f"{lock_dir.rstrip('/')}/{scope}.lock")
    release = (f"if grep -q {shlex.quote(run_id)} {qd}/holder.json 2>/dev/null; "
               f"then rm -rf {qd}; fi")
    return f"{append_command(audit_log, audit_lines)}; {release}"


def append_command(audit_log: str, lines: list[str]) -> str:
    """Hand JSON lines to the host's journal (tag ``gept-runbook``).

    The journal, not a file: any account may add to it and none but root can rewrite it,
    so the agent's runs are recorded where the agent cannot edit them. ``audit_log`` is
    kept for the callers' signature (the journal has no path).
    """
    del audit_log
    if not lines:
        return "true"
    body = " ".join(shlex.quote(line) for line in lines)
    return f"{{ printf '%s\\n' {body} | logger -t gept-runbook; }} 2>/dev/null || true"


def parse_acquire(stdout: str) -> tuple[bool, bool, dict[str, Any] | None]:
    """(acquired, broke_stale_lock, holder when held) from the acquire command's output."""
    lines = [x for x in stdout.splitlines() if x.strip()]
    broke = _BROKEN in lines
    if lines and lines[-1] == "ACQUIRED":
        return True, broke, None
    holder = None
    for line in lines:
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                holder = json.loads(line)
    return False, broke, holder
