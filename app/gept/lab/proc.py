"""Subprocesses for the lab: every call has a timeout and fails with a readable error.

Example:
    >>> run(["true"], timeout=5).returncode
    0
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence

from gept.core.errors import Failed

log = logging.getLogger(__name__)

# How much of a failing command's output an error message carries: enough to see the
# cause (the last lines of apt or dockerd), short enough to read in a terminal.
_TAIL_CHARS = 2000


def _tail(text: str | bytes | None) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    return text if len(text) <= _TAIL_CHARS else "..." + text[-_TAIL_CHARS:]


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and capture its output as text.

    Args:
        argv: the command and its arguments (never a shell string).
        timeout: seconds before the command is killed and `Failed` is raised.
        check: raise `Failed` when the command exits non-zero.
        input: data for the command's stdin.
        env: extra environment variables (merged over ``os.environ``).
        what: a short description for error messages ("docker build").

    Raises:
        Failed: on timeout, a missing executable, or (with ``check``) a non-zero exit.
    """
    label = what or shlex.join(argv[:3])
    full_env = {**os.environ, **env} if env else None
    log.debug("run: %s", shlex.join(argv))
    data: str | None
    data = input.decode() if isinstance(input, bytes) else input
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, input=data,
            env=full_env, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Failed(f"{label} timed out after {timeout:.0f} s: {_tail(exc.stderr)}",
                     command=list(argv), timeout=timeout) from exc
    except FileNotFoundError as exc:
        raise Failed(f"{label}: {argv[0]} is not installed (run scripts/setup-machine.sh)",
                     command=list(argv)) from exc
    if check and proc.returncode != 0:
        raise Failed(
            f"{label} failed (exit {proc.returncode}): {_tail(proc.stderr) or _tail(proc.stdout)}",
            command=list(argv), returncode=proc.returncode,
        )
    return proc


def pipe(
    producer: Sequence[str],
    consumer: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    what: str,
) -> str:
    """Run ``producer | consumer`` without a shell; return the consumer's stdout.

    Raises:
        Failed: when either side fails or the pipeline outlives ``timeout``.
    """
    full_env = {**os.environ, **env} if env else None
    log.debug("pipe: %s | %s", shlex.join(producer), shlex.join(consumer))
    try:
        with subprocess.Popen(list(producer), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=full_env) as left, \
                subprocess.Popen(list(consumer), stdin=left.stdout, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=full_env) as right:
            if left.stdout is not None:
                left.stdout.close()  # so the producer sees SIGPIPE if the consumer dies
            try:
                out, err = right.communicate(timeout=timeout)
                left_err = left.stderr.read() if left.stderr is not None else b""
                left.wait(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                left.kill()
                right.kill()
                raise Failed(f"{what} timed out after {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise Failed(f"{what}: {exc.filename} is not installed") from exc
    if left.returncode != 0:
        raise Failed(f"{what} failed (exit {left.returncode}): {_tail(left_err)}")
    if right.returncode != 0:
        raise Failed(f"{what} failed (exit {right.returncode}): {_tail(err) or _tail(out)}")
    return out.decode("utf-8", "replace")
