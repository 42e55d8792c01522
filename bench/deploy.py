"""Benchmark: converging a fresh lab vs re-converging it when nothing changed.

Brings up a private lab (prefix ``gbench-``, its own ports and state), converges both roles
with ``deploys/site.py`` (the first converge of fresh hosts), converges again (the no-op
run), and tears the lab down. The release and images are built on the controller before
timing starts (they are cached by content hash); the build time is printed separately.

Targets: no-op ≤ 20 s and ≤ 0.1× the first converge. The last line reads:
``deploy: first <seconds> s, no-op <seconds> s (<ratio>x)``.

Example:
    $ .venv/bin/python bench/deploy.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GEPT_LAB_PREFIX", "gbench-")
os.environ.setdefault("GEPT_LAB_PORT_OFFSET", "800")


def main() -> int:
    """Run the benchmark; exit 1 when a converge fails."""
    from deploys.images import built
    from deploys.release import current_release
    from gept import convergence
    from gept.lab.lab import Lab

    started = time.monotonic()
    release = current_release()
    os.environ["GEPT_RELEASE_PIN"] = release.version
    built("collectors", "lab", True)
    built("monitoring", "lab", False)
    print(f"controller build (release {release.version} + images): "
          f"{time.monotonic() - started:.1f} s", flush=True)

    lab = Lab.from_env()
    lab.down()
    up_started = time.monotonic()
    lab.up()
    print(f"fresh lab up: {time.monotonic() - up_started:.1f} s", flush=True)
    try:
        first = convergence.converge(timeout=2400)
        if first.returncode != 0:
            print(f"first converge failed: {first.stderr[-3000:]}", file=sys.stderr)
            return 1
        print(f"first converge: {first.seconds:.1f} s, {first.changes} changes", flush=True)
        noop = convergence.converge(timeout=600)
        if noop.returncode != 0:
            print(f"no-op converge failed: {noop.stderr[-3000:]}", file=sys.stderr)
            return 1
        print(f"no-op converge: {noop.seconds:.1f} s, {noop.changes} changes "
              f"(targets: <= 20 s and <= 0.1x)", flush=True)
    finally:
        if os.environ.get("GEPT_BENCH_KEEP_LAB") != "1":
            lab.down()
    ratio = noop.seconds / first.seconds
    print(f"deploy: first {first.seconds:.1f} s, no-op {noop.seconds:.1f} s ({ratio:.3f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
