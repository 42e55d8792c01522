"""Property-based run over the engine's OpenAPI document (schemathesis, live uvicorn).

Hypothesis generates valid and invalid requests for every operation; no answer may be a
5xx, and every 2xx body must match its documented schema.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from engine_seed import HEADERS, Row
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from gept.engine.main import create_app
from gept.testing.pgserver import free_port


@pytest.fixture
def live_engine(market: list[Row], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The engine under uvicorn on 127.0.0.1, serving the seeded market (webhooks on)."""
    monkeypatch.setenv("GEPT_WEBHOOK_SECRET", "property-test-webhook-secret-0123")
    monkeypatch.setenv("GEPT_PRICE_DROP_MONITOR_INTERVAL", "0")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(refresh_interval=0.5), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_no_server_errors_and_documented_bodies(live_engine: str) -> None:
    # (schemathesis' own pytest integration does not run under pytest 9; the operations and
    # their Hypothesis strategies are driven directly instead.)
    api = schemathesis.openapi.from_url(f"{live_engine}/openapi.json")
    api.config.update(base_url=live_engine)
    tested = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), result.err()          # the schema itself is valid
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=15, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(base_url=live_engine, headers=HEADERS,
                                       checks=[not_a_server_error,
                                               response_schema_conformance])

            try:
                run()
            except Unsatisfiable:
                # An operation without parameters has no invalid requests to generate.
                assert mode is GenerationMode.NEGATIVE
        tested.append(operation.label)
    assert "GET /api/v1/recommendations" in tested
    assert len(tested) >= 9
