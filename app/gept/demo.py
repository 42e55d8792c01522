"""`make demo`: the whole system on this machine, end to end.

lab up → both deploys applied (``deploys/site.py``) → the market simulator as the upstream
(a transient unit on Ampere) → a couple of days of simulated history backfilled and the
collectors running → a model trained on Hydra and promoted → inference on Hydra → the
engine answering recommendations on 127.0.0.1. Each step is idempotent, so a second
``make demo`` reuses what is there. An entry point only: the steps live in
`gept.convergence` (the deploys) and `gept.lab.workload` (the rest), which the lab tests'
``converged_lab`` fixture and the benchmarks use too.

Example:
    $ make demo          # or: python -m gept.demo [--days 2] [--no-forward]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from gept.convergence import LAB_INVENTORY, converge
from gept.core.errors import Failed
from gept.lab.workload import (
    LabShell,
    api_key,
    engine_url,
    infer,
    lab_ca,
    recommendations,
    seed_history,
    start_simulator,
    train_and_promote,
)


def _log(msg: str) -> None:
    sys.stderr.write(f"[demo {datetime.now(UTC):%H:%M:%S}] {msg}\n")
    sys.stderr.flush()


def web_wiring() -> str:
    """``gept web env`` for the lab, and one TLS call to the engine, as text to print."""
    import httpx

    from gept.engine.webenv import render, tls_verify, vercel_env
    from gept.inventory import load_inventory

    env = render(vercel_env(load_inventory(LAB_INVENTORY).host("ampere")), "production")
    url = f"{engine_url()}/api/v1/recommendations"
    resp = httpx.get(url, params={"capital": 10_000_000, "slots": 4}, timeout=10,
                     headers={"X-API-Key": api_key()}, verify=tls_verify(lab_ca()))
    body = resp.json()
    first = body[0]["item"] if isinstance(body, list) and body else "-"
    return (f"{env}\n\n$ curl --cacert {lab_ca()} -H 'X-API-Key: ...' "
            f"'{url}?capital=10000000&slots=4'\n"
            f"HTTP {resp.status_code} over {resp.extensions.get('http_version', b'').decode()}"
            f" TLS: {len(body) if isinstance(body, list) else 0} recommendations "
            f"(first: {first})")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def forward_8000(shell: LabShell) -> str | None:
    """Publish the engine on 127.0.0.1:8000 too (an SSH forward), when 8000 is free."""
    if not _port_free(8000):
        return None
    argv = shell.lab.ssh_argv("ampere")
    cmd = [*argv[:-1], "-f", "-N", "-o", "ExitOnForwardFailure=yes",
           "-L", "127.0.0.1:8000:127.0.0.1:8000", argv[-1]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    return "http://127.0.0.1:8000" if proc.returncode == 0 else None


def run(days: int, forward: bool) -> dict[str, Any]:
    """Every step of the demo; returns what it did, for the summary."""
    from gept.lab.lab import Lab
    from gept.lab.topology import HOST_NAMES

    _log("lab up")
    Lab.from_env().up()
    _log(f"converging {', '.join(HOST_NAMES)} (deploys/site.py)")
    first = converge()
    if first.returncode != 0:
        raise Failed(f"the deploys failed (exit {first.returncode}): {first.stderr[-3000:]}")
    _log(f"converged in {first.seconds:.0f} s ({first.changes} changes)")
    shell = LabShell()
    _log("starting the market simulator on ampere:8090 (the collectors' upstream)")
    start_simulator(shell)
    _log(f"backfilling {days} days of 5-minute prices")
    backfill = seed_history(shell, days)
    _log("training on hydra and promoting the model")
    trained = train_and_promote(shell, days)
    _log("inference on hydra")
    inferred = infer(shell)
    _log("asking the engine for recommendations")
    recs = recommendations()
    url = forward_8000(shell) if forward else None
    return {"converge_seconds": round(first.seconds, 1), "backfill": backfill,
            "train": trained, "infer": inferred, "recommendations": recs,
            "engine_url": url or engine_url()}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m gept.demo``."""
    parser = argparse.ArgumentParser(prog="gept.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=10, help="days of simulated history")
    parser.add_argument("--no-forward", action="store_true",
                        help="do not publish the engine on 127.0.0.1:8000")
    args = parser.parse_args(argv)
    try:
        result = run(args.days, forward=not args.no_forward)
    except Failed as exc:
        sys.stderr.write(f"demo failed: {exc.message}\n")
        return 1
    recs = result["recommendations"]
    count = len(recs) if isinstance(recs, list) else len(recs.get("recommendations", []))
    from gept.lab.topology import LabTopology

    topo = LabTopology.from_env()
    ports = topo.host("ampere").published
    key_file = topo.state_dir / "secrets" / "engine_api_key"
    print(f"""
GePT is running in the lab (converged in {result['converge_seconds']} s).
  engine:      {result['engine_url']}  ({count} recommendations just now; lab port:
               {engine_url()}{'; 8000 is an ssh -L forward that ends with `gept lab down`'
                              if result['engine_url'].endswith(':8000') else ''})
               curl -H "X-API-Key: $(cat {key_file})" \\
                 '{result['engine_url']}/api/v1/recommendations?capital=10000000&slots=4'
  health:      curl {result['engine_url']}/api/v1/health
  hosts:       gept lab ssh ampere | hydra | ampere-standby     (status: gept lab status)
  collectors:  gept lab ssh ampere -- curl -s localhost:{8080}/status.json
  prometheus:  ssh -F {topo.ssh_config_path} -L 9090:127.0.0.1:9090 ampere  (firewalled;
               published port {ports.get('prometheus')} is closed by design)
  drift:       gept drift --inventory inventory/lab.py
  checks:      gept check --inventory inventory/lab.py
  runbooks:    gept runbook run check-health --inventory inventory/lab.py
  tear down:   gept lab down""")
    print("\nThe web app's wiring (gept web env --inventory inventory/lab.py) and one TLS call:")
    print(web_wiring())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
