"""Plan-mode flags on a real apply: every spelling that used to count zones as approved.

``GEPT_DEPLOY_PLAN_ONLY=1 pyinfra -y``, ``pyinfra -vy --json`` and
``pyinfra -y ... --exclude --dry`` (``--dry`` being ``--exclude``'s value) all execute, so
on a run that would restart PostgreSQL each must be refused (exit 3) and change nothing on
either host. A real ``--dry`` of the same run reports the zone and its plan hash and exits 0
without changing anything either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gept import convergence

pytestmark = pytest.mark.timeout(1800)

# What a deploy could change (files, unit starts, PostgreSQL's start time and settings).
SNAPSHOT = (
    "cd / && { find /etc/gept /etc/cron.d /etc/systemd/system /opt/gept/collectors "
    "/etc/postgresql -type f 2>/dev/null | sort | xargs -r sha256sum; "
    "systemctl show -p ActiveEnterTimestamp postgresql@15-main recommendation-engine "
    "2>/dev/null; "
    "runuser -u postgres -- psql -d osrs_data -tAc 'SELECT pg_postmaster_start_time(); "
    "SHOW max_connections; SELECT id, status FROM model_registry ORDER BY 1' 2>/dev/null; "
    "} ; true"
)


def snapshot(lab: Any) -> dict[str, str]:
    return {h: lab.sh(h, SNAPSHOT) for h in ("ampere", "hydra")}


def pyinfra(args: list[str], env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("pyinfra")), *args]
    full = {k: v for k, v in os.environ.items()
            if k not in ("GEPT_DEPLOY_PLAN_ONLY", "PYINFRA_YES")}
    full.update(env or {})
    full.setdefault("PYINFRA_PROGRESS", "off")
    return subprocess.run(cmd, cwd=convergence.REPO, capture_output=True, text=True, timeout=900,
                          env=full, check=False)


def restart_args(lab: Any) -> list[str]:
    settings = dict(lab.inventory.host("ampere").data["postgres_settings"])
    changed = {**settings, "max_connections": str(int(settings["max_connections"]) + 7)}
    return ["--limit", "ampere", "--data", f"postgres_settings={json.dumps(changed)}"]


INVENTORY = str(convergence.LAB_INVENTORY)


@pytest.mark.parametrize(("argv", "env"), [
    (["-y", "--json", INVENTORY, convergence.SITE], {"GEPT_DEPLOY_PLAN_ONLY": "1"}),
    (["-vy", "--json", INVENTORY, convergence.SITE], {}),
    (["-y", "--json", INVENTORY, convergence.SITE, "--exclude", "--dry"], {}),
], ids=["plan-only-env", "vy-json", "exclude-dry"])
def test_plan_mode_spellings_on_a_real_apply_are_refused(converged_lab: Any, argv: list[str],
                                                         env: dict[str, str]) -> None:
    lab = converged_lab
    before = snapshot(lab)
    result = pyinfra([*argv, *restart_args(lab)], env)
    assert result.returncode == 3, (result.returncode, result.stderr[-3000:])
    assert "restart-postgres" in result.stderr
    assert snapshot(lab) == before, "a refused deploy changed a host"


def test_a_real_plan_reports_the_zone_and_changes_nothing(converged_lab: Any) -> None:
    lab = converged_lab
    before = snapshot(lab)
    result = pyinfra(["--dry", "--json", INVENTORY, convergence.SITE, *restart_args(lab)])
    assert result.returncode == 0, result.stderr[-3000:]
    zones = [json.loads(line[len("gept-zone: "):]) for line in result.stderr.splitlines()
             if line.startswith("gept-zone: ")]
    assert [z["zone"] for z in zones] == ["restart-postgres"]
    assert len(zones[0]["plan_hash"]) == 64
    assert snapshot(lab) == before


def test_deleting_intervals_json_does_not_blind_the_intervals_zone(converged_lab: Any) -> None:
    """The zone reads what the collectors run with (their containers' environment)."""
    lab = converged_lab
    record = f"{lab.inventory.host('ampere').data['collectors_dir']}/intervals.json"
    intervals = dict(lab.inventory.host("ampere").data["collector_intervals"])
    changed = {**intervals, "5m": intervals["5m"] * 2}
    lab.sh("ampere", f"mv {record} {record}.saved")
    try:
        before = snapshot(lab)
        result = pyinfra(["-y", "--json", INVENTORY, convergence.SITE, "--limit", "ampere",
                          "--data", f"collector_intervals={json.dumps(changed)}"])
        assert result.returncode == 3, (result.returncode, result.stderr[-3000:])
        refusal = next(json.loads(line) for line in result.stderr.splitlines()
                       if line.startswith("{") and '"changes"' in line)
        assert {"collector": "5m", "from": intervals["5m"], "to": changed["5m"]} in (
            refusal["changes"]), refusal
        assert snapshot(lab) == before, "a refused deploy changed a host"
    finally:
        lab.sh("ampere", f"mv {record}.saved {record}")
