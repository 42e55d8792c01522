"""`make demo`: the whole system on this machine, end to end.

lab up → both deploys applied (``deploys/site.py``) → the market simulator as the upstream
(a transient unit on Ampere) → a couple of days of simulated history backfilled and the
collectors running → a model trained on Hydra and promoted → inference on Hydra → the
engine answering recommendations on 127.0.0.1. Each step is idempotent, so a second
``make demo`` reuses what is there. The steps are also what the lab tests' ``converged_lab``
fixture runs.

Example:
    $ make demo          # or: python -m gept.demo [--days 2] [--no-forward]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gept.core.errors import Failed

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory" / "lab.py"
SITE = "deploys/site.py"
SIM_PORT = 8090
# The simulator lists only the items that traded in a block (about a third of a 5-minute
# block, as the real API does), so training's 20 items need a catalogue of about 200 to find
# 20 that trade in most blocks (40 items would give 11); that is ~75 rows a block (40 before).
SIM_ITEMS = 200
CONVERGE_TIMEOUT = 1500.0


def _log(msg: str) -> None:
    sys.stderr.write(f"[demo {datetime.now(UTC):%H:%M:%S}] {msg}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class ConvergeResult:
    """One ``pyinfra -y --json`` run of the deploys."""

    returncode: int
    seconds: float
    totals: dict[str, Any]
    changed: dict[str, list[str]]  # operation name -> hosts it changed
    stderr: str

    @property
    def changes(self) -> int:
        """How many (operation, host) pairs changed something."""
        return sum(len(hosts) for hosts in self.changed.values())


def converge(inventory: Path = INVENTORY, deploys: tuple[str, ...] = (SITE,),
             extra_args: tuple[str, ...] = (), timeout: float = CONVERGE_TIMEOUT,
             env: dict[str, str] | None = None) -> ConvergeResult:
    """Apply the deploys (``pyinfra -y --json``) and parse pyinfra's results.

    Never raises on pyinfra's exit status: callers assert on ``returncode`` (3 is a
    danger-zone refusal). A timeout is reported as ``returncode`` 124.
    """
    pyinfra = Path(sys.executable).with_name("pyinfra")
    cmd = [str(pyinfra), "-y", "--json", str(inventory), *deploys, *extra_args]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, check=False)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = 124, ""
        tail = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        err = f"pyinfra timed out after {timeout:.0f} s\n{tail}"
    seconds = time.monotonic() - started
    totals: dict[str, Any] = {}
    changed: dict[str, list[str]] = {}
    try:
        doc = json.loads(out) if out.strip() else {}
    except ValueError:
        doc = {}
    results = doc.get("results") or {}
    totals = dict(results.get("totals") or {})
    for op in results.get("operations") or []:
        if op.get("success"):
            changed[str(op.get("name"))] = list(op["success"])
    return ConvergeResult(code, seconds, totals, changed, err if isinstance(err, str) else "")


class Hosts:
    """Commands on the lab hosts, as the service user with the deployed environment."""

    def __init__(self) -> None:
        from gept.lab.lab import Lab

        self.lab = Lab.from_env()

    def sh(self, host: str, command: str, timeout: float = 600.0) -> str:
        """Run a root shell command; raise ``Failed`` with its output on a non-zero exit."""
        proc = self.lab.run(host, command, timeout=timeout)
        if proc.returncode != 0:
            raise Failed(f"{host}: `{command[:120]}` exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout)[-1500:]}", host=host)
        return proc.stdout

    def gept(self, host: str, args: str, timeout: float = 900.0) -> str:
        """``gept ARGS`` as the gept user with /etc/gept/gept.env and the job's own env.

        Each job has its own database role (gept.db.roles): ``gept collect`` reads
        collectors.env (the collectors' role), ``gept train`` / ``gept models`` read
        training.env (the registry's), everything else (``gept infer``) gept.env alone.
        """
        first = args.split(maxsplit=1)[0] if args.strip() else ""
        role_env = {"collect": "collectors.env", "train": "training.env",
                    "models": "training.env"}.get(first, "")
        extra = (f"[ -f /etc/gept/{role_env} ] && . /etc/gept/{role_env}; "
                 if role_env else "")
        inner = (f"set -a; . /etc/gept/gept.env; {extra}set +a; "
                 f"exec /usr/local/bin/gept {args}")
        return self.sh(host, f"cd / && runuser -u gept -- sh -c {shlex.quote(inner)}",
                       timeout=timeout)


def start_simulator(hosts: Hosts) -> None:
    """The market simulator as Ampere's upstream (127.0.0.1:8090), as a transient unit."""
    hosts.sh("ampere", (
        "systemctl is-active --quiet gept-market-sim || systemd-run --quiet "
        "--unit=gept-market-sim --uid=gept --property=Restart=on-failure "
        f"/usr/local/bin/gept market simulate --host 127.0.0.1 --port {SIM_PORT} "
        f"--items {SIM_ITEMS} --seed 7"))
    for _ in range(60):
        # Named, as every client must be: the simulator refuses curl's default agent (403).
        probe = hosts.lab.run("ampere", "curl -fsS -o /dev/null -A 'gept-demo/0.1 "
                              f"(lab@gept.example)' http://127.0.0.1:{SIM_PORT}"
                              "/api/v1/osrs/mapping", timeout=30)
        if probe.returncode == 0:
            return
        time.sleep(1)
    raise Failed("the market simulator did not answer on ampere:8090 within 60 s")


def seed_history(hosts: Hosts, days: int) -> dict[str, Any]:
    """Item mapping plus ``days`` of 5-minute history, so training has data."""
    hosts.gept("ampere", "collect items --once --json", timeout=300)
    # Up to the last *complete* 5-minute block: the current one does not exist upstream yet.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now = now - timedelta(minutes=now.minute % 5 + 5)
    since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%MZ")
    until = now.strftime("%Y-%m-%dT%H:%MZ")
    out = hosts.gept("ampere", f"collect backfill --since {since} --until {until} --pause 0 "
                     "--json", timeout=1200)
    return _last_json(out)


def train_and_promote(hosts: Hosts, days: int) -> dict[str, Any]:
    """Train on Hydra (through the tunnel) and promote when the scope has no ACTIVE model."""
    out = hosts.gept("hydra", f"train --days {days} --items 20 --iterations 60 --promote "
                     "--json", timeout=1500)
    return _last_json(out)


def infer(hosts: Hosts) -> dict[str, Any]:
    """One primary inference run on Hydra."""
    return _last_json(hosts.gept("hydra", "infer --role primary --json", timeout=600))


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    return {"output": text[-500:]}


def api_key() -> str:
    """The lab's engine API key (generated by the deploys into the lab's state dir)."""
    from gept.lab.topology import LabTopology

    return (LabTopology.from_env().state_dir / "secrets" / "engine_api_key").read_text().strip()


def engine_url() -> str:
    """The engine as the lab publishes it on this machine: Caddy's TLS port on Ampere."""
    from gept.lab.topology import LabTopology

    port = LabTopology.from_env().host("ampere").published["engine_tls"]
    return f"https://127.0.0.1:{port}"


def lab_ca() -> str:
    """The lab CA that signed the engine's TLS certificate (made by the deploys)."""
    from gept.lab.topology import LabTopology

    return str(LabTopology.from_env().state_dir / "secrets" / "engine-tls-ca.crt")


def web_wiring() -> str:
    """``gept web env`` for the lab, and one TLS call to the engine, as text to print."""
    import httpx

    from gept.engine.webenv import render, tls_verify, vercel_env
    from gept.inventory import load_inventory

    env = render(vercel_env(load_inventory(INVENTORY).host("ampere")), "production")
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


def recommendations(base_url: str | None = None, attempts: int = 30) -> list[Any]:
    """``GET /api/v1/recommendations`` from the controller (retries while the engine warms).

    Raises:
        Failed: when the engine does not answer 200 within ``attempts`` tries.
    """
    import httpx

    from gept.engine.webenv import tls_verify

    url = (base_url or engine_url()) + "/api/v1/recommendations"
    last = ""
    for _ in range(attempts):
        try:
            resp = httpx.get(url, params={"capital": 10_000_000, "slots": 4},
                             headers={"X-API-Key": api_key()}, timeout=10,
                             verify=tls_verify(lab_ca()) if url.startswith("https:") else True)
            if resp.status_code == 200:
                body: list[Any] = resp.json()  # the clients' bare array (web-contract W1)
                return body
            last = f"{resp.status_code} {resp.text[:300]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(2)
    raise Failed(f"the engine did not answer recommendations: {last}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def forward_8000(hosts: Hosts) -> str | None:
    """Publish the engine on 127.0.0.1:8000 too (an SSH forward), when 8000 is free."""
    if not _port_free(8000):
        return None
    argv = hosts.lab.ssh_argv("ampere")
    cmd = [*argv[:-1], "-f", "-N", "-o", "ExitOnForwardFailure=yes",
           "-L", "127.0.0.1:8000:127.0.0.1:8000", argv[-1]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    return "http://127.0.0.1:8000" if proc.returncode == 0 else None


def run(days: int, forward: bool) -> dict[str, Any]:
    """Every step of the demo; returns what it did, for the summary."""
    from gept.lab.lab import Lab

    _log("lab up")
    Lab.from_env().up()
    _log("converging ampere and hydra (deploys/site.py)")
    first = converge()
    if first.returncode != 0:
        raise Failed(f"the deploys failed (exit {first.returncode}): {first.stderr[-3000:]}")
    _log(f"converged in {first.seconds:.0f} s ({first.changes} changes)")
    hosts = Hosts()
    _log("starting the market simulator on ampere:8090 (the collectors' upstream)")
    start_simulator(hosts)
    _log(f"backfilling {days} days of 5-minute prices")
    backfill = seed_history(hosts, days)
    _log("training on hydra and promoting the model")
    trained = train_and_promote(hosts, days)
    _log("inference on hydra")
    inferred = infer(hosts)
    _log("asking the engine for recommendations")
    recs = recommendations()
    url = forward_8000(hosts) if forward else None
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
  hosts:       gept lab ssh ampere | gept lab ssh hydra     (status: gept lab status)
  collectors:  gept lab ssh ampere -- curl -s localhost:{8080}/status.json
  prometheus:  ssh -F {topo.ssh_config_path} -L 9090:127.0.0.1:9090 ampere  (firewalled;
               published port {ports.get('prometheus')} is closed by design)
  drift:       gept drift --inventory inventory/lab.py
  checks:      gept check
  runbooks:    gept runbook list
  tear down:   gept lab down""")
    print("\nThe web app's wiring (gept web env --inventory inventory/lab.py) and one TLS call:")
    print(web_wiring())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
