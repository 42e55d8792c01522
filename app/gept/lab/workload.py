"""What runs on the converged lab: the simulator upstream, history, a model, inference, and
the engine's answer. ``make demo`` runs these steps in order; so does the lab tests'
``converged_lab`` fixture (tests/lab/fixtures_converge.py).

Example:
    >>> shell = LabShell()                                  # doctest: +SKIP
    >>> start_simulator(shell); seed_history(shell, days=2)  # doctest: +SKIP
    >>> len(recommendations())                              # doctest: +SKIP
    4
"""

from __future__ import annotations

import json
import shlex
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from gept.core.errors import Failed

SIM_PORT = 8090
# The simulator lists only the items that traded in a block (about a third of a 5-minute
# block, as the real API does), so training's 20 items need a catalogue of about 200 to find
# 20 that trade in most blocks (40 items would give 11); that is ~75 rows a block (40 before).
SIM_ITEMS = 200


class LabShell:
    """Commands on the lab hosts: as root (`sh`), or as the gept user with the deployed
    environment (`gept`).
    """

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


def start_simulator(shell: LabShell) -> None:
    """The market simulator as Ampere's upstream (127.0.0.1:8090), as a transient unit."""
    shell.sh("ampere", (
        "systemctl is-active --quiet gept-market-sim || systemd-run --quiet "
        "--unit=gept-market-sim --uid=gept --property=Restart=on-failure "
        f"/usr/local/bin/gept market simulate --host 127.0.0.1 --port {SIM_PORT} "
        f"--items {SIM_ITEMS} --seed 7"))
    for _ in range(60):
        # Named, as every client must be: the simulator refuses curl's default agent (403).
        probe = shell.lab.run("ampere", "curl -fsS -o /dev/null -A 'gept-demo/0.1 "
                              f"(lab@gept.example)' http://127.0.0.1:{SIM_PORT}"
                              "/api/v1/osrs/mapping", timeout=30)
        if probe.returncode == 0:
            return
        time.sleep(1)
    raise Failed("the market simulator did not answer on ampere:8090 within 60 s")


def seed_history(shell: LabShell, days: int) -> dict[str, Any]:
    """Item mapping plus ``days`` of 5-minute history, so training has data."""
    shell.gept("ampere", "collect items --once --json", timeout=300)
    # Up to the last *complete* 5-minute block: the current one does not exist upstream yet.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now = now - timedelta(minutes=now.minute % 5 + 5)
    since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%MZ")
    until = now.strftime("%Y-%m-%dT%H:%MZ")
    out = shell.gept("ampere", f"collect backfill --since {since} --until {until} --pause 0 "
                     "--json", timeout=1200)
    return _last_json(out)


def train_and_promote(shell: LabShell, days: int) -> dict[str, Any]:
    """Train on Hydra (through the tunnel) and promote when the scope has no ACTIVE model."""
    out = shell.gept("hydra", f"train --days {days} --items 20 --iterations 60 --promote "
                     "--json", timeout=1500)
    return _last_json(out)


def infer(shell: LabShell) -> dict[str, Any]:
    """One primary inference run on Hydra."""
    return _last_json(shell.gept("hydra", "infer --role primary --json", timeout=600))


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
