"""Runner overhead: `check-health` through the runbook runner vs. the same commands over one
Fabric connection, side by side in one run.

Starts its own sshd on loopback (gept.testing.sshd) unless ``--inventory`` names another
inventory (e.g. the lab's: ``--inventory inventory/lab.py``). Each round measures, alternating
to cancel drift:

1. **runner**: ``gept.runbook.service.run("check-health")`` end to end: load the pinned
   catalogue (every file hashed and validated), select hosts, render and hash the plan, the
   audit trail (one write per run), connect, run every step, host journal lines, close;
2. **direct**: one ``fabric.Connection`` (same inventory adapter) running the exact same
   rendered commands one after another, then closing.

The ratio is median(runner) / median(direct); the target is <= 1.5x.

Usage:
    .venv/bin/python bench/runbook.py [--rounds 5] [--inventory inventory/lab.py]

The last line reads exactly:
    runbook: check-health <ratio>x direct Fabric
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gept.runbook import service
from gept.testing.sshd import LoopbackSshd

REPO = Path(__file__).resolve().parents[1]


def direct(inventory: Path) -> float:
    """The same commands over one Fabric connection, timed from connect to close."""
    plan = service.build_plan("check-health", {}, inventory=inventory)
    commands = [a.secret_command for s in plan.steps for a in s.actions.values()]
    start = time.perf_counter()
    conn = plan.hosts[0].connection()
    try:
        for command in commands:
            conn.run(command, hide=True, warn=True, in_stream=False, timeout=30)
    finally:
        conn.close()
    return time.perf_counter() - start


def runner(inventory: Path) -> tuple[float, str]:
    """check-health through the runner, end to end (validation included)."""
    start = time.perf_counter()
    result = service.run("check-health", {}, inventory=inventory)  # the pinned catalogue
    return time.perf_counter() - start, str(result["status"])


def main() -> int:
    """Measure and print; the last line is the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inventory", type=Path, default=None)
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 50))

    with tempfile.TemporaryDirectory(prefix="gept-bench-") as tmp:
        os.environ.setdefault("GEPT_STATE_DIR", str(Path(tmp) / "state"))
        sshd = None
        inventory = args.inventory
        if inventory is None:
            sshd = LoopbackSshd(Path(tmp) / "sshd").start()
            inventory = sshd.write_inventory(Path(tmp) / "inventory.py", ["ampere", "hydra"])
        try:
            runner(inventory)  # warm-up: imports, first connection, page cache
            direct(inventory)
            r_times: list[float] = []
            d_times: list[float] = []
            status = ""
            for i in range(rounds):
                if i % 2 == 0:
                    d_times.append(direct(inventory))
                    seconds, status = runner(inventory)
                    r_times.append(seconds)
                else:
                    seconds, status = runner(inventory)
                    r_times.append(seconds)
                    d_times.append(direct(inventory))
        finally:
            if sshd is not None:
                sshd.stop()
    r_med, d_med = statistics.median(r_times), statistics.median(d_times)
    print(f"inventory: {'loopback sshd (started here)' if args.inventory is None else inventory}")
    print(f"rounds: {rounds}; check-health status on these hosts: {status}")
    print(f"direct Fabric: median {d_med:.3f} s  (min {min(d_times):.3f}, max {max(d_times):.3f})")
    print(f"runner:        median {r_med:.3f} s  (min {min(r_times):.3f}, max {max(r_times):.3f})")
    print(f"runbook: check-health {r_med / d_med:.2f}x direct Fabric")
    return 0


if __name__ == "__main__":
    sys.exit(main())
