"""The lab for tests: ``gept lab up`` once per session, shared by every lab test.

Fixture ``lab`` (session scope) yields a `LabHandle`:

* ``lab.hosts``: ``{"ampere": {...}, "hydra": {...}}`` as written to the lab state
  (container, address, ssh_port, published_ports, ssh_host_public_key, ...);
* ``lab.run(host, cmd)`` -> ``CompletedProcess`` (over SSH, host keys checked);
  ``lab.sh(host, cmd)`` -> stdout, failing the test with the output on a non-zero exit;
* ``lab.inventory_path`` (``inventory/lab.py``) and ``lab.inventory`` (`gept.inventory`);
* ``lab.lab`` (the `gept.lab.lab.Lab`), ``lab.up_report`` (timings of the session's up).

If the lab cannot start, every test using it FAILS with the reason (it never skips):
CI prepares the machine with ``scripts/setup-machine.sh``. The lab stays up after the
session (the next run reuses it); set ``GEPT_LAB_TEARDOWN=1`` to remove it at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# The deploys' session fixture: both hosts converged, a model trained, inference run.
from fixtures_converge import converged_lab  # noqa: F401

from gept.core.errors import GeptError
from gept.inventory import Inventory, load_inventory
from gept.lab.lab import Lab

REPO = Path(__file__).resolve().parents[2]
LAB_INVENTORY = REPO / "inventory" / "lab.py"


@dataclass
class LabHandle:
    """The running lab as tests see it."""

    lab: Lab
    up_report: dict[str, Any]
    inventory_path: Path = LAB_INVENTORY
    inventory: Inventory = field(init=False)

    def __post_init__(self) -> None:
        self.inventory = load_inventory(self.inventory_path)

    @property
    def hosts(self) -> dict[str, Any]:
        """Host name -> state (container, address, ssh_port, published_ports, ...)."""
        hosts: dict[str, Any] = self.up_report["hosts"]
        return hosts

    def run(self, host: str, cmd: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` through a shell on ``host`` over SSH; never raises on exit status."""
        return self.lab.run(host, cmd, timeout=timeout)

    def sh(self, host: str, cmd: str, timeout: float = 300.0) -> str:
        """Run ``cmd`` on ``host``; fail the test with its output unless it exits 0."""
        proc = self.run(host, cmd, timeout=timeout)
        if proc.returncode != 0:
            pytest.fail(f"{host}: `{cmd}` exited {proc.returncode}\n"
                        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")
        return proc.stdout


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/lab/ needs the lab: mark it so ``-m 'not lab'`` skips them.

    Tests marked ``rewinds_the_lab`` (a restore of the live database from the repository:
    a new timeline, the standby re-seeded, every service restarted) run after all others,
    so that no other test starts on a lab still settling from them.
    """
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)
    items.sort(key=lambda item: item.get_closest_marker("rewinds_the_lab") is not None)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    """The lab hosts ampere and hydra, up (started or reused) for the whole session."""
    the_lab = Lab.from_env()
    try:
        report = the_lab.up()
    except GeptError as exc:
        pytest.fail(f"the lab cannot start: {exc.message} "
                    "(prepare the machine with scripts/setup-machine.sh; "
                    "`gept lab up -v` shows each step)", pytrace=False)
    yield LabHandle(lab=the_lab, up_report=report)
    if os.environ.get("GEPT_LAB_TEARDOWN") == "1":
        the_lab.down()


@pytest.fixture(scope="session")
def converged(request: pytest.FixtureRequest) -> LabHandle:
    """The lab after both deploys ran, with a model trained and inference running."""
    handle: LabHandle = request.getfixturevalue("converged_lab")
    return handle
