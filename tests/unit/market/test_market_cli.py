"""`gept market simulate` starts, answers like the API, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from gept.market.client import WikiClient
from gept.market.simulator import SyntheticMarket

GEPT = str(Path(sys.executable).with_name("gept"))


def test_simulate_serves_the_api_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [GEPT, "market", "simulate", "--port", "0", "--items", "25", "--seed", "3",
         "--now", "2026-01-01T00:00:00+00:00", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["status"] == "listening"
        assert info["port"] > 0
        with WikiClient(info["url"], "gept-tests/0.1 (ops@example.org)") as client:
            snap = client.five_minute()
            # The seeded market, traded items only: the same rows in-process and served.
            assert snap == SyntheticMarket(25, 3).block(snap.timestamp)
            assert snap.timestamp.isoformat() == "2025-12-31T23:55:00+00:00"  # frozen clock
            assert len(client.mapping()) == 25
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0


def test_simulate_refuses_a_bad_fault_kind() -> None:
    proc = subprocess.run(
        [GEPT, "market", "simulate", "--port", "0", "--fault-rate", "0.5",
         "--fault-kinds", "teapot", "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["field"] == "fault"


def test_probe_summarises_one_call_and_fails_with_exit_1() -> None:
    import os

    from gept.market.simulator import SimulatorServer

    with SimulatorServer(items=15, seed=2) as sim:
        sim.clock.set(1767225600)
        env = {**os.environ, "GEPT_WIKI_BASE_URL": sim.url, "GEPT_WIKI_RETRIES": "1",
               "GEPT_PLAYERS_URL": sim.url + "/players",
               "GEPT_WIKI_USER_AGENT": "gept-tests/0.1 (ops@example.org)"}
        ok = subprocess.run([GEPT, "market", "probe", "5m", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        result = json.loads(ok.stdout)
        assert result["rows"] == len(sim.market.block(datetime(2025, 12, 31, 23, 55,
                                                               tzinfo=UTC)).rows) > 0
        assert result["block"] == "2025-12-31T23:55:00+00:00"
        players = subprocess.run([GEPT, "market", "probe", "players", "--json"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert json.loads(players.stdout)["players"] > 0
        sim.faults.set_rate(1.0, ["503"])
        bad = subprocess.run([GEPT, "market", "probe", "mapping", "--json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1
        error = json.loads(bad.stdout)
        assert error["error"] == "UpstreamHTTPError"
        assert error["http_status"] == 503


def test_move_sets_lists_and_clears_a_running_simulators_moves() -> None:
    from gept.market.simulator import SimulatorServer

    with SimulatorServer(items=15, seed=2) as sim:
        item = sim.market.item_ids.tolist()[3]
        def run(*a: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([GEPT, "market", "move", *a, "--url", sim.url],
                                  capture_output=True, text=True, timeout=60)
        set_ = run(str(item), "--change", "-0.15", "--at", "2026-12-02T03:00:00Z", "--json")
        assert set_.returncode == 0, set_.stderr
        assert json.loads(set_.stdout)["moves"][0]["since"] == 1796180400.0
        assert [(m.item_id, m.factor) for m in sim.market.moves.moves] == [(item, 0.85)]
        listed = run()
        assert listed.returncode == 0
        assert f"{item} x0.85 from 2026-12-02T03:00:00+00:00" in listed.stdout
        assert run(str(item), "--change", "-1.5").returncode == 2   # the simulator refuses it
        assert run(str(item)).returncode == 2                       # no --change
        assert run("--clear").returncode == 0
        assert sim.market.moves.moves == ()
        url = sim.url
    gone = subprocess.run([GEPT, "market", "move", "--url", url], capture_output=True,
                          text=True, timeout=60)
    assert gone.returncode == 1
