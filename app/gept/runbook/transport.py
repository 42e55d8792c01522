"""Issuing commands: over one Fabric connection per host, or on the controller.

Commands never read stdin (``in_stream=False``) and never get a pty, so nothing can ever
wait for a password or a confirmation: ``sudo`` steps use ``sudo -n``. Host keys are checked
against the inventory's known_hosts (paramiko's ``RejectPolicy``) unless the inventory turns
strict checking off.

Example:
    >>> with Session(host) as s:  # doctest: +SKIP
    ...     s.run("systemctl is-active recommendation-engine", timeout=10).ok
    True
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gept.inventory import Host


@dataclass
class Outcome:
    """What one command did."""

    exit: int | None
    stdout: str
    stderr: str
    duration: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Exit status 0 and no transport error."""
        return self.error is None and self.exit == 0


class Session:
    """One SSH connection to one host, opened lazily and reused by every step."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._conn: Any = None

    def connect(self) -> None:
        """Open the connection now (so connection errors surface before any step)."""
        if self._conn is not None:
            return
        conn = self.host.connection()
        conn.open()
        self._conn = conn

    def run(self, command: str, timeout: float) -> Outcome:
        """Run one command; timeouts and transport failures become an ``Outcome``."""
        from invoke.exceptions import CommandTimedOut

        start = time.monotonic()
        try:
            self.connect()
            result = self._conn.run(command, timeout=max(1, int(timeout)), hide=True,
                                    warn=True, in_stream=False, pty=False)
        except CommandTimedOut as exc:
            return Outcome(None, exc.result.stdout, exc.result.stderr,
                           time.monotonic() - start, f"timed out after {timeout:g}s")
        except Exception as exc:  # paramiko/socket errors vary; report, never crash the run
            return Outcome(None, "", "", time.monotonic() - start,
                           f"{type(exc).__name__}: {exc}")
        return Outcome(result.exited, result.stdout, result.stderr, time.monotonic() - start)

    def put(self, src: str, dest: str, mode: str, timeout: float) -> Outcome:
        """Copy a controller file to the host and set its mode."""
        start = time.monotonic()
        try:
            self.connect()
            self._conn.put(src, dest)
        except Exception as exc:  # missing local file, SFTP permission denied, ...
            return Outcome(None, "", "", time.monotonic() - start,
                           f"upload failed: {type(exc).__name__}: {exc}")
        import shlex

        out = self.run(f"chmod {mode} {shlex.quote(dest)}", timeout)
        out.duration = time.monotonic() - start
        return out

    def put_bytes(self, data: bytes, dest: str, mode: str, timeout: float) -> Outcome:
        """Copy exactly ``data`` to the host (SFTP) and set its mode."""
        import io
        import shlex

        start = time.monotonic()
        try:
            self.connect()
            self._conn.put(io.BytesIO(data), dest)
        except Exception as exc:  # SFTP permission denied, broken connection, ...
            return Outcome(None, "", "", time.monotonic() - start,
                           f"upload failed: {type(exc).__name__}: {exc}")
        out = self.run(f"chmod {mode} {shlex.quote(dest)}", timeout)
        out.duration = time.monotonic() - start
        return out

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def run_local(command: str, timeout: float) -> Outcome:
    """Run a command on the controller with bash, bounded in time, never reading stdin."""
    start = time.monotonic()
    try:
        proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, _text(exc.stdout), _text(exc.stderr), time.monotonic() - start,
                       f"timed out after {timeout:g}s")
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
