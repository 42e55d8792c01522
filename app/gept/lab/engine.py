"""The Docker engine on this machine: find the client, start ``dockerd`` when it is down.

The engine is Debian's ``docker.io`` (20.10). Its own client (/usr/bin/docker) is preferred:
another client on PATH may be much newer (28.x) and print warnings or refuse commands, so
when only that one exists the API version is pinned instead.

Example:
    >>> engine = DockerEngine.default()          # doctest: +SKIP
    >>> engine.ensure_running()                  # doctest: +SKIP
    >>> engine.docker("ps", "-q", timeout=10)    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gept.core.errors import Failed
from gept.lab.proc import run

log = logging.getLogger(__name__)

DEBIAN_CLIENT = Path("/usr/bin/docker")
DOCKERD = Path("/usr/sbin/dockerd")
API_VERSION = "1.41"  # the API of docker.io 20.10, for newer clients
START_TIMEOUT = 60.0


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (bounded wait), so concurrent labs and
    test sessions do not build the same image or start dockerd twice.

    Raises:
        Failed: when the lock is not free within ``timeout`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Failed(f"{what}: another process holds {path} "
                                 f"for more than {timeout:.0f} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class DockerEngine:
    """How to reach (and if needed start) the machine's Docker engine."""

    client: str
    env: dict[str, str]
    runtime_dir: Path  # dockerd pidfile and log when the lab starts it

    @classmethod
    def default(cls, runtime_dir: Path | None = None) -> DockerEngine:
        """The Debian client when installed, else the first ``docker`` on PATH."""
        env = {"DOCKER_BUILDKIT": "0"}  # the 20.10 engine builds with the classic builder
        if DEBIAN_CLIENT.exists():
            client = str(DEBIAN_CLIENT)
        else:
            client = shutil.which("docker") or "docker"
            env["DOCKER_API_VERSION"] = API_VERSION
        if runtime_dir is None:
            base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
            runtime_dir = base / "gept" / "dockerd"
        return cls(client=client, env=env, runtime_dir=runtime_dir)

    def docker(self, *args: str, timeout: float, check: bool = True,
               input: str | None = None, what: str | None = None,
               ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` with this engine's client and environment."""
        return run([self.client, *args], timeout=timeout, check=check, input=input,
                   env=self.env, what=what or f"docker {args[0] if args else ''}".strip())

    def is_running(self) -> bool:
        """True when the engine answers ``docker version`` within a few seconds."""
        try:
            proc = self.docker("version", "--format", "{{.Server.Version}}", timeout=10,
                               check=False)
        except Failed:
            return False
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def server_version(self) -> str:
        """The engine's version string (e.g. ``20.10.24+dfsg1``)."""
        return self.docker("version", "--format", "{{.Server.Version}}", timeout=10).stdout.strip()

    def ensure_running(self) -> bool:
        """Start ``dockerd`` in the background when no engine answers.

        Returns:
            True when this call started the engine, False when it was already running.

        Raises:
            Failed: ``docker engine could not start: ...`` with the end of dockerd's log.
        """
        if self.is_running():
            return False
        with file_lock(self.runtime_dir / "start.lock", timeout=START_TIMEOUT + 30,
                       what="starting the docker engine"):
            if self.is_running():  # another process started it while we waited
                return False
            self._start()
        return True

    def _start(self) -> None:
        if not DOCKERD.exists():
            raise Failed("docker engine could not start: /usr/sbin/dockerd is missing "
                         "(install docker.io: scripts/setup-machine.sh)")
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        pidfile = self.runtime_dir / "dockerd.pid"
        logfile = self.runtime_dir / "dockerd.log"
        _remove_stale_pidfile(pidfile)
        log.info("starting dockerd (log: %s)", logfile)
        with logfile.open("ab") as out:
            # A new session so dockerd outlives this command and ignores its Ctrl-C.
            proc = subprocess.Popen(
                [str(DOCKERD), "--pidfile", str(pidfile)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.is_running():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.3)
        raise Failed(f"docker engine could not start: {_log_tail(logfile)}",
                     log=str(logfile))


def _remove_stale_pidfile(pidfile: Path) -> None:
    """Dockerd refuses to start over a pidfile left by a dead daemon."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
    except PermissionError:
        pass


def _log_tail(logfile: Path, lines: int = 8) -> str:
    try:
        text = logfile.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "no log"
    return " | ".join(text[-lines:])
