"""``gept-op``: the few root actions of caution runbooks that are not one plain command.

Installed as ``/usr/local/sbin/gept-op`` (root-owned; the host's release venv, ``python -I``)
and allowed to ``gept-agent`` by sudoers. Each verb is fixed here and validates its
arguments; none touches a danger zone and none runs code the caller chose: a release is
activated only if a person's converge built it on this host (root-owned, ``.installed``).

Verbs: ``engine-activate RELEASE``, ``engine-rollback``, ``enable-fallback``,
``collector-logs NAME LINES``, ``inference-log LINES``, ``restore-drill`` (a scratch restore
on a standby host: :mod:`gept.db.drill`; it never touches the live cluster),
``backup-info`` (the repository's backups and the archiver's state, as JSON),
``engine-call KIND`` (one call of the web app's contract with the engine's key, which the
agent never reads: :mod:`gept.gate.engine_probe`).

Example:
    $ sudo -n /usr/local/sbin/gept-op engine-activate 0.1.0+3f2a9c0d1e2b
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gept.core.errors import ExitCode, GeptError
from gept.gate.host import HostFacts

COLLECTORS = ("5m", "latest", "1h", "items", "news", "players")
_RELEASE_RE = re.compile(r"[0-9][0-9A-Za-z.]{0,30}\+[0-9a-f]{8,64}")


class OpError(Exception):
    """A refused or failed operation (exit 2 for bad input, 1 otherwise)."""

    def __init__(self, message: str, code: int = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


def _lines(text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]{0,3}", text) or int(text) > 2000:
        raise OpError("LINES must be 1..2000", ExitCode.INVALID)
    return int(text)


def _swap_link(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def engine_activate(facts: HostFacts, release: str) -> str:
    """Point ``current`` at an installed release; the old one becomes ``previous``."""
    if not _RELEASE_RE.fullmatch(release):
        raise OpError("RELEASE must look like <version>+<content hash>", ExitCode.INVALID)
    root = Path(facts.app_root)
    target = root / "releases" / release
    st = target.lstat() if target.exists() else None
    if st is None or target.is_symlink() or st.st_uid != 0 or \
            not (target / ".installed").is_file():
        raise OpError(f"{target} is not a release a converge installed here")
    current = root / "current"
    old = current.resolve() if current.exists() else None
    if old == target.resolve():
        return f"{release} is already current"
    if old is not None:
        _swap_link(root / "previous", old)
    _swap_link(current, target)
    return f"current -> {release}" + (f" (previous -> {old.name})" if old else "")


def engine_rollback(facts: HostFacts) -> str:
    """Swap ``current`` and ``previous`` (running it twice returns to the start)."""
    root = Path(facts.app_root)
    current, previous = root / "current", root / "previous"
    if not previous.is_symlink() or not (previous.resolve() / "venv").is_dir():
        raise OpError("no previous release to roll back to")
    cur, prev = current.resolve(), previous.resolve()
    _swap_link(current, prev)
    _swap_link(previous, cur)
    return f"current -> {prev.name} (previous -> {cur.name})"


def enable_fallback(facts: HostFacts) -> str:
    """Uncomment Ampere's fallback inference line (not a danger zone: it adds a producer)."""
    cron = Path(facts.inference_cron)
    pattern = re.compile(r"^#\s*(gept-runbook-stopped:\s*)?(.*gept infer.*--role fallback.*)$")
    lines = cron.read_text().splitlines()
    out = [pattern.sub(r"\2", line) for line in lines]
    tmp = cron.with_name(".gept-inference.tmp")
    tmp.write_text("\n".join(out) + "\n")
    os.chmod(tmp, 0o644)
    tmp.replace(cron)
    return f"{sum(a != b for a, b in zip(lines, out, strict=True))} line(s) enabled"


def collector_logs(facts: HostFacts, name: str, lines: str) -> str:
    """The last lines of one collector's container log."""
    if name not in COLLECTORS:
        raise OpError(f"NAME must be one of {', '.join(COLLECTORS)}", ExitCode.INVALID)
    proc = subprocess.run(
        ["/usr/bin/docker-compose", "-f", f"{facts.collectors_dir}/docker-compose.yml", "logs",
         "--no-color", "--tail", str(_lines(lines)), f"collector-{name}"],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise OpError(proc.stderr.strip()[-400:] or "docker-compose logs failed")
    return proc.stdout


def inference_log(facts: HostFacts, lines: str) -> str:
    """The last lines of the inference log."""
    count = _lines(lines)  # refuse a bad argument before touching anything
    text = Path(facts.inference_log).read_text(errors="replace").splitlines()
    return "\n".join(text[-count:])


def restore_drill(_facts: HostFacts) -> str:
    """Restore the latest point into a scratch instance and compare; the JSON report."""
    from gept.db.drill import main_report

    return main_report()


def backup_info(_facts: HostFacts) -> str:
    """What the repository holds for this host's stanza, and the archiver's state."""
    import json

    from gept.db.backups import BackupError, BackupFacts, archiver_state, repository_info

    facts = BackupFacts.load()
    try:
        return json.dumps({"repository": repository_info(facts),
                           "archiver": archiver_state(facts)}, indent=2, sort_keys=True)
    except BackupError as exc:
        raise OpError(str(exc)) from exc


def engine_call(_facts: HostFacts, kind: str) -> str:
    """One read-only call of the web app's contract, made with the engine's key."""
    from gept.gate.engine_probe import ProbeError, call

    try:
        return call(kind)
    except ProbeError as exc:
        raise OpError(str(exc), exc.code) from exc


def main(argv: list[str] | None = None) -> int:
    """Run one verb; print its result."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbs = {"engine-activate": (engine_activate, 1), "engine-rollback": (engine_rollback, 0),
             "enable-fallback": (enable_fallback, 0), "collector-logs": (collector_logs, 2),
             "inference-log": (inference_log, 1), "restore-drill": (restore_drill, 0),
             "backup-info": (backup_info, 0), "engine-call": (engine_call, 1)}
    if not args or args[0] not in verbs or len(args) - 1 != verbs[args[0]][1]:
        sys.stderr.write(f"usage: gept-op {{{','.join(verbs)}}} ARGS...\n")
        return ExitCode.INVALID
    fn, _ = verbs[args[0]]
    try:
        out = fn(HostFacts.load(), *args[1:])  # type: ignore[operator]
    except OpError as exc:
        sys.stderr.write(f"gept-op: {exc}\n")
        return exc.code
    except (GeptError, OSError, subprocess.SubprocessError) as exc:
        sys.stderr.write(f"gept-op: {exc}\n")
        return ExitCode.FAILED
    sys.stdout.write(str(out).rstrip("\n") + "\n")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
