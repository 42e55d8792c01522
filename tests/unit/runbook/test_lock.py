"""Lock commands run for real in a local shell (the same text the runner sends over SSH)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gept.core.errors import Locked
from gept.runbook import lock


def sh(command: str) -> str:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10,
                          check=True).stdout


def holder(run_id: str, expires_in: float = 600) -> dict[str, object]:
    return lock.holder_record(run_id, "restart-engine", expires_in)


def test_host_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    audit = tmp_path / "log" / "audit.jsonl"
    first = sh(lock.host_acquire_command(str(tmp_path / "locks"), "engine", holder("run-1"),
                                         str(audit), ['{"event": "requested"}']))
    assert lock.parse_acquire(first) == (True, False, None)
    second = sh(lock.host_acquire_command(str(tmp_path / "locks"), "engine", holder("run-2"),
                                          str(audit), []))
    acquired, broke, other = lock.parse_acquire(second)
    assert not acquired
    assert not broke
    assert other is not None
    assert other["run_id"] == "run-1"
    assert "run run-1 of restart-engine" in lock.describe(other)
    # Releasing with another run id leaves the lock alone; with ours it goes.
    sh(lock.host_release_command(str(tmp_path / "locks"), "engine", "run-2", str(audit), []))
    assert (tmp_path / "locks" / "engine.lock").exists()
    sh(lock.host_release_command(str(tmp_path / "locks"), "engine", "run-1", str(audit),
                                 ['{"event": "finished"}']))
    assert not (tmp_path / "locks" / "engine.lock").exists()


def test_host_audit_lines_go_to_the_journal() -> None:
    # The journal: any account may add, only root may rewrite (a file the agent can
    # append to, it could also truncate).
    cmd = lock.append_command("/ignored", ['{"event": "requested"}'])
    assert "| logger -t gept-runbook" in cmd
    assert lock.append_command("/ignored", []) == "true"


def test_expired_host_lock_is_broken(tmp_path: Path) -> None:
    locks = str(tmp_path / "locks")
    sh(lock.host_acquire_command(locks, "engine", holder("dead", expires_in=-10), "/dev/null",
                                 []))
    out = sh(lock.host_acquire_command(locks, "engine", holder("alive"), "/dev/null", []))
    assert lock.parse_acquire(out) == (True, True, None)


def test_controller_lock(tmp_path: Path) -> None:
    first = lock.ControllerLock("engine", "ampere", holder("run-1"))
    first.acquire()
    try:
        with pytest.raises(Locked) as err:
            lock.ControllerLock("engine", "ampere", holder("run-2")).acquire()
        assert err.value.exit_code == 4
        assert err.value.details["holder"]["run_id"] == "run-1"
        with lock.ControllerLock("engine", "hydra", holder("run-3")):
            pass  # another host is another lock
    finally:
        first.release()
    with lock.ControllerLock("engine", "ampere", holder("run-4")) as again:
        assert again.path.read_text().count("run-4") == 1
