"""The converged lab, shared by every lab test that needs Ampere and Hydra as production.

Fixture ``converged_lab`` (session scope; imported by ``tests/lab/conftest.py``) takes the
``lab`` fixture, then:

1. pins the release (built once from the committed tree) so commits landing during the
   session do not change what the hosts converge to;
2. converges both hosts with ``deploys/site.py`` and converges them *again* — the second
   run's pyinfra ``--json`` results are kept for the idempotency test;
3. runs the demo's data path: the market simulator on Ampere, backfilled history, a model
   trained on Hydra and promoted, one primary inference run.

It returns the same ``LabHandle`` as ``lab``; ``CONVERGE`` holds the two runs' results.
Every pyinfra call runs under a timeout. A failure fails the tests (never skips) with
pyinfra's output.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from gept import convergence
from gept.lab import workload

CONVERGE: dict[str, Any] = {}
HISTORY_DAYS = 10


def pin_release() -> str:
    """Build (or reuse) the release of HEAD and pin it for this session's pyinfra runs."""
    import sys

    sys.path.insert(0, str(convergence.REPO))
    from deploys.release import current_release

    version = current_release().version
    os.environ["GEPT_RELEASE_PIN"] = version
    return version


def _fail(what: str, result: convergence.ConvergeResult) -> None:
    pytest.fail(f"{what} failed (exit {result.returncode}, {result.seconds:.0f} s):\n"
                f"{result.stderr[-4000:]}", pytrace=False)


def _wait_for_tunnel(lab: Any, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = lab.run("hydra", "systemctl is-active gept-db-tunnel.service", timeout=30)
        if proc.stdout.strip() == "active":
            time.sleep(3)  # still up after a restart interval: connected, not flapping
            if lab.run("hydra", "systemctl is-active gept-db-tunnel.service",
                       timeout=30).stdout.strip() == "active":
                return
        time.sleep(2)
    pytest.fail("hydra's gept-db-tunnel.service did not become active within "
                f"{timeout:.0f} s after the first converge", pytrace=False)


@pytest.fixture(scope="session")
def converged_lab(lab: Any) -> Any:
    """The lab with both roles converged, data collected, a model trained and inference run."""
    CONVERGE["release"] = pin_release()
    first = convergence.converge()
    if first.returncode != 0:
        _fail("converging the lab (deploys/site.py)", first)
    # On a first converge Hydra's tunnel starts before Ampere has authorized its key and
    # systemd restarts it every few seconds until the key is in place; a re-run started in
    # that gap would see a stopped unit. Idempotency is measured on the settled system.
    _wait_for_tunnel(lab)
    second = convergence.converge()
    if second.returncode != 0:
        _fail("re-converging the lab", second)
    CONVERGE.update(first=first, second=second)
    hosts = workload.LabShell()
    try:
        workload.start_simulator(hosts)
        CONVERGE["backfill"] = workload.seed_history(hosts, HISTORY_DAYS)
        CONVERGE["train"] = workload.train_and_promote(hosts, HISTORY_DAYS)
        CONVERGE["infer"] = workload.infer(hosts)
    except Exception as exc:  # a failed data step fails every test that needs it
        pytest.fail(f"preparing the converged lab's data failed: {exc}", pytrace=False)
    return lab
