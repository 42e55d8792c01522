"""A few seconds without PostgreSQL (a switchover) are not an outage for the web app.

The engine keeps serving the batch it holds for ``GEPT_DB_OUTAGE_GRACE_SECONDS`` after its
last good read, while health, readiness and the metric say at once that the database is
unreachable; once the grace is over, recommendations are 503 as in any outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine_seed import HEADERS, ClientFactory, Row

from gept.engine.cache import EngineState
from gept.testing.pgserver import PgServer

RECS = "/api/v1/recommendations?capital=10000000"
GRACE = 15.0


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    """Poll ``check`` until it is true or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


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
