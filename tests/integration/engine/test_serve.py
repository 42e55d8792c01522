"""`gept serve` as the systemd unit runs it: refuses without a key, serves with one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from engine_seed import API_KEY, HEADERS, Row

from gept.testing.pgserver import free_port

GEPT = str(Path(sys.executable).parent / "gept")


def test_serve_refuses_to_start_without_a_key(engine_env: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEPT_ENGINE_API_KEY")}
    result = subprocess.run([GEPT, "serve", "--port", str(free_port())], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "GEPT_ENGINE_API_KEY" in result.stdout + result.stderr


def test_serve_runs_uvicorn_with_the_engine(market: list[Row], engine_env: str) -> None:
    port = free_port()
    env = {**os.environ, "GEPT_DATABASE_URL": engine_env, "GEPT_ENGINE_API_KEY": API_KEY}
    proc = subprocess.Popen([GEPT, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{base}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready is not None
        assert ready.status_code == 200
        recs = httpx.get(f"{base}/api/v1/flips", params={"capital": 10_000_000},
                         headers=HEADERS, timeout=5)
        assert recs.status_code == 200
        assert recs.json()["recommendations"]
        assert "server" not in recs.headers          # no version banner
        assert httpx.get(f"{base}/api/v1/health", timeout=5).json()["status"] == "ok"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises SIGTERM (systemd counts that as a clean stop).
    assert proc.returncode in (0, -signal.SIGTERM), out.decode()[-2000:]
    assert b"Application shutdown complete" in out
