"""A PostgreSQL restart under a running engine: 503 with a clear body, then recovery.

A few seconds without PostgreSQL (a switchover) are not an outage for the web app: the
engine keeps serving the batch it holds for ``GEPT_DB_OUTAGE_GRACE_SECONDS`` after its last
good read, while health, readiness and the metric say at once that the database is
unreachable; once the grace is over, recommendations are 503 as in any outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine_seed import HEADERS, ClientFactory, Row
from fastapi.testclient import TestClient

from gept.engine.cache import EngineState
from gept.testing.pgserver import PgServer

if TYPE_CHECKING:
    import httpx2  # what starlette's TestClient answers with (mcp installs it)

RECS = "/api/v1/recommendations?capital=10000000"


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    """Poll ``check`` until it is true or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_database_restart_gives_503_then_serves_again_without_restart(
        client: TestClient, pg_server: PgServer) -> None:
    assert client.get(RECS, headers=HEADERS).status_code == 200
    last: dict[str, httpx2.Response] = {}

    def status_is(path: str, code: int) -> Callable[[], bool]:
        def check() -> bool:
            last[path] = client.get(path, headers=HEADERS)
            return last[path].status_code == code
        return check

    pg_server.stop_server()
    try:
        assert wait_for(status_is(RECS, 503), 20), last[RECS].text
        body = last[RECS].json()
        assert body["error"] == "database_unavailable"
        assert "PostgreSQL is unreachable" in body["detail"]
        assert last[RECS].headers["Retry-After"] == "5"
        # Routes that query the database say the same, instead of hanging or a 500.
        models = client.get("/api/v1/models", headers=HEADERS)
        assert models.status_code == 503
        assert models.json()["error"] == "database_unavailable"
        health = client.get("/api/v1/health")
        assert health.status_code == 503
        assert health.json()["status"] == "error"
        assert health.json()["database"]["reachable"] is False
        assert client.get("/ready").status_code == 503
        assert client.get("/healthz").status_code == 200  # the process itself is alive
        assert "gept_engine_db_up 0.0" in client.get("/metrics").text
    finally:
        pg_server.start_server()

    # Same app, same pool: no restart. It notices the database within seconds.
    assert wait_for(status_is(RECS, 200), 30), last[RECS].text
    assert wait_for(status_is("/api/v1/models", 200), 10), last["/api/v1/models"].text
    assert client.get("/api/v1/health").json()["status"] == "ok"
    assert client.get("/ready").status_code == 200


GRACE = 15.0


def test_a_short_outage_is_served_from_memory_a_long_one_is_503(
        market: list[Row], make_client: ClientFactory, pg_server: PgServer) -> None:
    client = make_client(db_outage_grace_seconds=GRACE)
    state: EngineState = client.app.state.engine  # type: ignore[attr-defined]
    served = client.get(RECS, headers=HEADERS)
    assert served.status_code == 200
    pg_server.stop_server()
    try:
        # Health tells the truth at once: the database is gone.
        assert wait_for(lambda: client.get("/api/v1/health").status_code == 503, GRACE / 2)
        assert state.reached_at is not None
        assert time.monotonic() - state.reached_at < GRACE - 2, "too slow to judge the grace"
        # ...but the web app still gets the same flips, from the batch in memory.
        during = client.get(RECS, headers=HEADERS)
        assert during.status_code == 200, during.text
        assert during.json() == served.json()
        assert "gept_engine_db_up 0.0" in client.get("/metrics").text
        # Past the grace it is an outage: 503 with the outage's body.
        late = None

        def refused() -> bool:
            nonlocal late
            late = client.get(RECS, headers=HEADERS)
            return late.status_code == 503
        assert wait_for(refused, GRACE + 10)
        assert late is not None
        assert late.json()["error"] == "database_unavailable"
        assert time.monotonic() - state.reached_at >= GRACE
    finally:
        pg_server.start_server()
    assert wait_for(lambda: client.get(RECS, headers=HEADERS).status_code == 200, 30)


def test_no_grace_means_503_at_the_first_failed_read(
        market: list[Row], make_client: ClientFactory, pg_server: PgServer) -> None:
    client = make_client(db_outage_grace_seconds=0)
    assert client.get(RECS, headers=HEADERS).status_code == 200
    pg_server.stop_server()
    try:
        assert wait_for(lambda: client.get("/api/v1/health").status_code == 503, 10)
        assert client.get(RECS, headers=HEADERS).status_code == 503
    finally:
        pg_server.start_server()
    assert wait_for(lambda: client.get(RECS, headers=HEADERS).status_code == 200, 30)
