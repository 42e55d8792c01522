"""`gept check`: the report names host and check, --json is one document, exit codes.

The real checks need hosts (tests/lab/test_checks.py); here a stand-in checks directory
(``GEPT_CHECKS_DIR``) with one passing and one failing check per host drives the same CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = '''
import pytest

def pytest_addoption(parser):
    parser.addoption("--gept-inventory")
    parser.addoption("--gept-hosts")

def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        hosts = (metafunc.config.getoption("--gept-hosts") or "ampere,hydra").split(",")
        metafunc.parametrize("target", hosts)

def pytest_collection_modifyitems(items):
    for item in items:
        item.user_properties.append(("gept_host", item.callspec.params["target"]))
        item.user_properties.append(("gept_check", item.function.__doc__.strip()))
'''

CHECKS = '''
def test_ok(target):
    """The thing is fine."""

def test_engine(target):
    """The engine unit is active."""
    assert target != "ampere", "recommendation-engine.service is not running"
'''


@pytest.fixture
def fake_checks(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "conftest.py").write_text(CONFTEST)
    (checks / "test_fake.py").write_text(CHECKS)
    inventory = tmp_path / "inv.py"
    inventory.write_text('ampere = ["ampere"]\nhydra = ["hydra"]\n')
    env = {**os.environ, "GEPT_CHECKS_DIR": str(checks)}
    return inventory, env


def _gept(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gept.cli", "check", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_failure_is_reported_with_host_and_check(fake_checks: tuple[Path, dict[str, str]]) -> None:
    inventory, env = fake_checks
    proc = _gept(env, "--inventory", str(inventory))
    assert proc.returncode == 1
    assert "ampere: 1 of 2 checks FAILED" in proc.stdout
    assert "FAIL The engine unit is active" in proc.stdout
    assert "-> recommendation-engine.service is not running" in proc.stdout
    assert "hydra: 2/2 checks ok" in proc.stdout
    assert "FAILED: ampere: The engine unit is active" in proc.stdout


def test_json_report_for_agents(fake_checks: tuple[Path, dict[str, str]]) -> None:
    inventory, env = fake_checks
    proc = _gept(env, "--inventory", str(inventory), "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["status"] == "failed"
    assert report["summary"] == {"passed": 3, "failed": 1, "error": 0, "skipped": 0}
    (failure,) = report["failures"]
    assert failure["host"] == "ampere"
    assert failure["check"] == "The engine unit is active."
    assert failure["message"] == "recommendation-engine.service is not running"


def test_selected_host_passes_with_exit_0(fake_checks: tuple[Path, dict[str, str]]) -> None:
    inventory, env = fake_checks
    proc = _gept(env, "--inventory", str(inventory), "--host", "hydra", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "passed"
    assert report["hosts"] == ["hydra"]


def test_unknown_host_is_invalid_input(fake_checks: tuple[Path, dict[str, str]]) -> None:
    inventory, env = fake_checks
    proc = _gept(env, "--inventory", str(inventory), "--host", "nosuch", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["field"] == "target"


def test_missing_inventory_is_invalid_input(fake_checks: tuple[Path, dict[str, str]],
                                            tmp_path: Path) -> None:
    _inventory, env = fake_checks
    proc = _gept(env, "--inventory", str(tmp_path / "none.py"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr
