"""The root CLI maps errors to the exit codes of the contract."""

from __future__ import annotations

import json
import subprocess
import sys


def gept(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gept.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_unknown_option_is_invalid_input() -> None:
    result = gept("db", "migrate", "--no-such-option")
    assert result.returncode == 2
    assert "no-such-option" in result.stderr


def test_unreachable_database_fails_with_a_clear_json_error() -> None:
    result = gept("db", "status", "--dsn", "postgresql://nobody@127.0.0.1:1/none", "--json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["error"] == "DatabaseError"
    assert "unreachable" in body["message"]


def test_version() -> None:
    result = gept("--version")
    assert result.returncode == 0
    assert result.stdout.strip()
