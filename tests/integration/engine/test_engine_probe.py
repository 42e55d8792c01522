"""`gept-op engine-call KIND` (what check-health runs as root) against a served engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from engine_seed import API_KEY, Row

from gept.core.errors import ExitCode
from gept.gate.engine_probe import ProbeError, call, engine_url
from gept.testing.pgserver import free_port

GEPT = str(Path(sys.executable).parent / "gept")


@pytest.fixture
def served(market: list[Row], engine_env: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "GEPT_DATABASE_URL": engine_env, "GEPT_ENGINE_API_KEY": API_KEY,
           "GEPT_PRICE_DROP_MONITOR_INTERVAL": "0"}
    proc = subprocess.Popen([GEPT, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_each_kind_answers_the_shape_the_web_app_reads(served: str) -> None:
    assert call("recommendations", served, API_KEY).startswith(
        "GET /api/v1/recommendations: 200, ")
    assert "(items, total, has_more)" in call("opportunities", served, API_KEY)
    item = call("item", served, API_KEY)
    assert item.startswith("GET /api/v1/items/")
    assert "hourly points, trend " in item


def test_a_wrong_key_an_unknown_kind_and_no_engine_fail_without_showing_the_key(
        served: str) -> None:
    with pytest.raises(ProbeError, match="HTTP 401") as wrong:
        call("opportunities", served, "not-the-key")
    assert "not-the-key" not in str(wrong.value)
    with pytest.raises(ProbeError) as kind:
        call("flips", served, API_KEY)
    assert kind.value.code == ExitCode.INVALID
    with pytest.raises(ProbeError, match="did not answer"):
        call("recommendations", f"http://127.0.0.1:{free_port()}", API_KEY)


def test_the_engine_port_comes_from_its_environment_file(tmp_path: Path) -> None:
    env = tmp_path / "engine.env"
    env.write_text("GEPT_ENGINE_HOST='127.0.0.1'\nGEPT_ENGINE_PORT='8123'\n")
    assert engine_url(env) == "http://127.0.0.1:8123"
    env.write_text("GEPT_ENGINE_PORT='80; rm -rf /'\n")
    with pytest.raises(ProbeError):
        engine_url(env)
