"""The collectors' status page: HTML, JSON, metrics and health, from collector_runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import psycopg
import pytest

from gept.collectors.status import StatusServer
from gept.core.clock import utcnow

CHROMIUM = "/usr/bin/chromium"
EXPECTED_STATES = {"5m": "ok", "latest": "stale", "1h": "failing", "items": "ok",
                   "news": "never", "players": "ok"}


@pytest.fixture
def ledger(db_dsn: str) -> str:
    """collector_runs as a person would see it mid-incident."""
    now = utcnow()
    runs = [  # collector, seconds ago, status, rows, error
        ("5m", 60, "ok", 4000, None),
        ("5m", 360, "ok", 3990, None),
        ("latest", 600, "ok", 3900, None),          # 10 min > 2 x 60 s: stale
        ("1h", 1800, "ok", 3800, None),
        ("1h", 60, "failed", 0, "/1h: HTTP 503"),   # fresh but the newest run failed
        ("items", 7200, "ok", 4100, None),
        ("players", 100, "ok", 1, None),
    ]
    with psycopg.connect(db_dsn) as conn:
        for name, ago, status, rows, error in runs:
            at = now - timedelta(seconds=ago)
            conn.execute(
                "INSERT INTO collector_runs (collector, started_at, finished_at, status, "
                "rows_written, error) VALUES (%s, %s, %s, %s, %s, %s)",
                (name, at - timedelta(seconds=2), at, status, rows, error))
        conn.execute("INSERT INTO data_quality (table_name, gap_start, gap_end) VALUES "
                     "('price_data_5min', %s, %s)",
                     (now - timedelta(hours=2), now - timedelta(hours=1)))
        conn.commit()
    return db_dsn


@pytest.fixture
def page(ledger: str) -> Iterator[StatusServer]:
    with StatusServer(ledger, port=0) as server:
        yield server


def test_status_json_gives_each_collector_its_state(page: StatusServer) -> None:
    body = httpx.get(f"{page.url}/status.json", timeout=10).json()
    states = {c["collector"]: c["state"] for c in body["collectors"]}
    assert states == EXPECTED_STATES
    assert body["ok"] is False
    assert sorted(body["stale"]) == ["latest", "news"]
    five = next(c for c in body["collectors"] if c["collector"] == "5m")
    assert five["last_success_rows"] == 4000
    assert five["rows_24h"] == 7990
    assert 55 <= five["age_seconds"] < 120
    assert len(body["gaps"]["open"]) == 1


def test_metrics_are_derived_from_the_ledger_with_contract_names(page: StatusServer) -> None:
    text = httpx.get(f"{page.url}/metrics", timeout=10).text
    assert 'gept_collector_runs_total{collector="1h"} 2.0' in text
    assert 'gept_collector_failures_total{collector="1h"} 1.0' in text
    assert 'gept_collector_rows_written_total{collector="5m"} 7990.0' in text
    assert 'gept_collector_runs_total{collector="news"} 0.0' in text
    assert 'gept_collector_last_success_timestamp_seconds{collector="news"} 0.0' in text
    assert 'gept_collector_interval_seconds{collector="latest"} 60.0' in text


def test_health_and_html(page: StatusServer) -> None:
    assert httpx.get(f"{page.url}/healthz", timeout=10).status_code == 200
    html = httpx.get(f"{page.url}/status", timeout=10)
    assert html.headers["content-type"].startswith("text/html")
    assert 'data-collector="latest" data-state="stale"' in html.text
    assert "Stale: latest, news" in html.text


def test_database_down_is_a_503_not_a_hang() -> None:
    with StatusServer("postgresql://nobody@127.0.0.1:1/none", port=0) as server:
        health = httpx.get(f"{server.url}/healthz", timeout=20)
        page = httpx.get(f"{server.url}/status", timeout=20)
    assert health.status_code == 503
    assert health.json()["database"] == "down"
    assert page.status_code == 503
    assert "Status unavailable" in page.text


class _Rows(HTMLParser):
    """Collects, per collector row: its state and the text of its freshness cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._current: str | None = None
        self._in_fresh = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and (collector := a.get("data-collector")):
            self._current = collector
            self.rows[collector] = {"state": a.get("data-state") or "",
                                        "class": a.get("class") or "", "freshness": ""}
        elif tag == "td" and self._current and a.get("class") == "freshness":
            self._in_fresh = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_fresh = False
        elif tag == "tr":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._in_fresh and self._current:
            self.rows[self._current]["freshness"] += data


@pytest.mark.browser
def test_status_page_renders_in_headless_chromium(page: StatusServer, tmp_path: Path) -> None:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(scripts/setup-machine.sh does: apt-get install chromium)")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", f"{page.url}/status"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    parser = _Rows()
    parser.feed(result.stdout)
    rows = parser.rows
    assert {name: r["state"] for name, r in rows.items()} == EXPECTED_STATES
    assert re.match(r"\d+ s ago", rows["5m"]["freshness"])
    assert "fresh" in rows["5m"]["freshness"]
    assert rows["latest"]["freshness"].startswith("10 min ago")
    assert "stale: no success for over 2 min" in rows["latest"]["freshness"]
    assert rows["news"]["freshness"].startswith("never")
    assert "GePT collectors" in result.stdout


def test_status_page_command_serves_and_stops_on_sigterm(ledger: str) -> None:
    import os
    import signal
    import sys
    import time

    from gept.testing.pgserver import free_port

    port = free_port()
    gept = str(Path(sys.executable).with_name("gept"))
    proc = subprocess.Popen([gept, "collect", "status-page", "--port", str(port)],
                            env={**os.environ, "GEPT_DATABASE_URL": ledger},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 200
    assert proc.returncode == 0
