"""The audit trail: every request, refusal, approval and use, as JSON lines.

Written where the agent cannot rewrite it: root writes ``/var/log/gept/audit.jsonl``
directly; any other account hands each line to ``sudo -n /usr/local/sbin/gept-audit-append``
(root-owned; it stamps the caller from sudo, so a line cannot claim another account, and it
only appends). Where that helper is not installed (a developer's laptop), an account writes
its own ``~/.local/state/gept/audit.jsonl`` and says so in every line (``"trail": "own"``).
The hosts' gate decisions go to each host's journal (``journalctl -t gept-gate``);
``gept audit`` reads both.

Example:
    >>> redact({"password": "hunter2", "user": "osrs"})
    {'password': '***redacted***', 'user': 'osrs'}
    >>> with batch():  # doctest: +SKIP
    ...     record("step", run_id="r1", step="health", ok=True)
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gept.guards import approval as approvals

ROOT_LOG = Path("/var/log/gept/audit.jsonl")
APPENDER = Path("/usr/local/sbin/gept-audit-append")
REDACTED = "***redacted***"
_SECRET_KEY_RE = re.compile(r"(password|passwd|secret|api_?key|private_?key|^token$|_token$|"
                            r"^approval$|_approval$)", re.IGNORECASE)
_buffer: list[str] | None = None
_test_file: Path | None = None  # set by tests through use_file(); no flag or variable sets it


def use_file(path: Path | None) -> None:
    """Write and read ``path`` instead (tests only; Python API, not configuration)."""
    global _test_file
    _test_file = path


def own_log() -> Path:
    """An account's own trail, used only where the root-owned appender is missing."""
    return Path("~/.local/state/gept/audit.jsonl").expanduser()


def log_path() -> Path:
    """The trail this account writes (and ``gept audit`` reads first)."""
    if _test_file is not None:
        return _test_file
    if os.geteuid() == 0 or APPENDER.exists():
        return ROOT_LOG
    return own_log()


def redact(value: Any, key: str = "") -> Any:
    """Redact secrets in a JSON-like value: secret-looking keys and approval texts."""
    if key and _SECRET_KEY_RE.search(key) and value not in (None, "", REDACTED):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str) and approvals.PREFIX in value:
        for text in approvals.find(value):
            value = value.replace(text, REDACTED)
    return value


def actor() -> str:
    """The account running this process (``sudo`` caller included)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user


def record(event: str, **fields: Any) -> dict[str, Any]:
    """Write one audit line (or buffer it inside :func:`batch`); secrets are redacted.

    Returns:
        The record as written.
    """
    line: dict[str, Any] = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": event, "user": actor(), "controller": socket.gethostname(),
        "pid": os.getpid(),
    }
    line.update(redact(fields))
    text = json.dumps(line, default=str)
    if _buffer is not None:
        _buffer.append(text)
    else:
        _write([text])
    return line


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Collect the lines of one run and write them in one go at the end (one sudo call)."""
    global _buffer
    if _buffer is not None:
        yield
        return
    _buffer = []
    try:
        yield
    finally:
        lines, _buffer = _buffer, None
        if lines:
            _write(lines)


def _write(lines: list[str]) -> None:
    path = log_path()
    if path == ROOT_LOG and os.geteuid() != 0:
        proc = subprocess.run(["sudo", "-n", str(APPENDER)], input="\n".join(lines) + "\n",
                              text=True, capture_output=True, timeout=30, check=False)
        if proc.returncode == 0:
            return
        # Never lose a line: fall back to this account's own trail, marked as such.
        path = own_log()
        lines = [json.dumps({**json.loads(x), "trail": "own",
                             "appender_error": proc.stderr.strip()[-200:]}) for x in lines]
    elif path == own_log():
        lines = [json.dumps({**json.loads(x), "trail": "own"}) for x in lines]
    append_lines(path, lines)


def append_lines(path: Path, lines: list[str]) -> None:
    """Append under an exclusive lock (concurrent runs never interleave a line)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755 if path == ROOT_LOG else 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                 0o644 if path == ROOT_LOG else 0o600)
    with os.fdopen(fd, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read(path: Path | None = None) -> list[dict[str, Any]]:
    """Every record of a trail, oldest first (unparseable lines skipped)."""
    target = path or log_path()
    try:
        text = target.read_text()
    except (FileNotFoundError, PermissionError):
        return []
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                out.append(item)
    return out
