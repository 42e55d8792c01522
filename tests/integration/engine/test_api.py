"""The engine's routes against a real PostgreSQL: keys, errors, health, metrics, lookups."""

from __future__ import annotations

import re

import pytest
from engine_seed import API_KEY, HEADERS, ClientFactory
from fastapi.testclient import TestClient

from gept.core.errors import ConfigError
from gept.engine.main import create_app

PROTECTED = [
    "/api/v1/recommendations?capital=1000000",
    "/api/v1/recommendations/rec-1700000000-101-4-125",
    "/api/v1/predictions/101",
    "/api/v1/items/search?q=bones",
    "/api/v1/items/101/price-history",
    "/api/v1/models",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_routes_need_the_key(client: TestClient, path: str) -> None:
    missing = client.get(path)
    wrong = client.get(path, headers={"X-API-Key": API_KEY[:-1] + "x"})
    for resp in (missing, wrong):
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"] == "ApiKey"
        assert "X-API-Key" in resp.json()["detail"]
    assert client.get(path, headers=HEADERS).status_code in (200, 404)


def test_open_routes_need_no_key_and_reveal_nothing_secret(
        client: TestClient, engine_env: str) -> None:
    for path in ("/healthz", "/ready", "/api/v1/health", "/metrics", "/openapi.json"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert API_KEY not in resp.text
        assert engine_env not in resp.text
        assert "postgresql://" not in resp.text


def test_engine_refuses_to_start_without_a_real_key(
        engine_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gept.core.config import get_settings
    for bad in ("", "changeme", "short"):
        monkeypatch.setenv("GEPT_ENGINE_API_KEY", bad)
        get_settings.cache_clear()
        with pytest.raises(ConfigError, match="GEPT_ENGINE_API_KEY"):
            create_app()


def test_health_reports_database_predictions_and_models(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok", body
    assert body["database"]["reachable"] is True
    assert body["database"]["latency_ms"] >= 0
    assert body["models_active"] == 1
    assert body["predictions_age_seconds"] < 600
    assert body["freshness"]["stale"] is False
    assert body["version"]
    assert body["uptime_seconds"] >= 0


def test_ready_waits_for_a_batch(engine_env: str, make_client: ClientFactory) -> None:
    client = make_client()  # migrated database, no predictions
    resp = client.get("/ready")
    assert resp.status_code == 503
    assert resp.json()["reason"] == "no predictions batch yet"
    health = client.get("/api/v1/health")
    assert health.status_code == 503
    assert health.json()["status"] == "error"
    recs = client.get("/api/v1/recommendations?capital=10000", headers=HEADERS)
    assert recs.status_code == 503
    assert recs.json()["error"] == "no_predictions"


def test_ready_when_batch_exists(client: TestClient) -> None:
    resp = client.get("/ready")
    assert resp.status_code == 200
    assert resp.json()["ready"] is True


@pytest.mark.parametrize(("query", "field"), [
    ("capital=999", "capital"),
    ("capital=lots", "capital"),
    ("", "capital"),
    ("capital=100000&slots=0", "slots"),
    ("capital=100000&slots=9", "slots"),
    ("capital=100000&style=turbo", "style"),
    ("capital=100000&risk=yolo", "risk"),
    ("capital=100000&exclude_item_ids=4151,abc", "exclude_item_ids"),
])
def test_bad_recommendation_parameters_are_422_naming_the_field(
        client: TestClient, query: str, field: str) -> None:
    resp = client.get(f"/api/v1/recommendations?{query}", headers=HEADERS)
    assert resp.status_code == 422
    body = resp.json()
    assert field in body["fields"]
    assert field in body["message"]
    assert ["query", field] in [d["loc"] for d in body["detail"]]


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/predictions/abc", "item_id"),
    ("/api/v1/predictions/0", "item_id"),
    ("/api/v1/items/101/price-history?hours=0", "hours"),
    ("/api/v1/items/101/price-history?hours=1000", "hours"),
    ("/api/v1/items/search", "q"),
    ("/api/v1/items/search?q=", "q"),
    ("/api/v1/models?status=BROKEN", "status"),
    ("/api/v1/recommendations/not-an-id", "rec_id"),
])
def test_bad_parameters_elsewhere_are_422_naming_the_field(
        client: TestClient, path: str, field: str) -> None:
    resp = client.get(path, headers=HEADERS)
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["fields"]


@pytest.mark.parametrize("path", ["/api/v1/predictions/999999",
                                  "/api/v1/items/999999/price-history"])
def test_unknown_item_is_404(client: TestClient, path: str) -> None:
    resp = client.get(path, headers=HEADERS)
    assert resp.status_code == 404
    assert "999999" in resp.json()["detail"]


def test_item_predictions_list_every_configuration_and_the_best(client: TestClient) -> None:
    body = client.get("/api/v1/predictions/102", headers=HEADERS).json()
    assert body["item_name"] == "Abyssal whip"
    assert len(body["predictions"]) == 35          # 7 windows x 5 offsets in the fixture
    best = max(body["predictions"], key=lambda p: p["expected_value"] * p["fill_probability"])
    assert body["best"] == best
    assert body["freshness"]["stale"] is False


def test_search_finds_items_by_name_prefix_first(client: TestClient) -> None:
    body = client.get("/api/v1/items/search", params={"q": "A"}, headers=HEADERS).json()
    names = [i["name"] for i in body]
    assert names[0] == "Abyssal whip"         # the only name starting with "a"
    assert set(names) == {"Abyssal whip", "Cheap bones", "Rare thing", "Nameless limit",
                          "Tax trap"}
    none = client.get("/api/v1/items/search", params={"q": "100%_"}, headers=HEADERS).json()
    assert none == []  # LIKE wildcards are literal


def test_price_history_returns_recent_hours(client: TestClient) -> None:
    body = client.get("/api/v1/items/103/price-history", params={"hours": 2},
                      headers=HEADERS).json()
    assert body["itemName"] == "Rare thing"
    assert len(body["history"]) == 1          # one 5-minute block: one hourly bucket
    point = body["history"][0]
    assert (point["high"], point["low"]) == (100, 99)
    assert body["trend"] == "Stable"


def test_models_lists_the_registry_without_paths(client: TestClient) -> None:
    body = client.get("/api/v1/models", headers=HEADERS).json()
    assert body["active"] == 1
    assert body["models"][0]["status"] == "ACTIVE"
    assert "model_path" not in body["models"][0]
    assert "artifact_sha256" not in body["models"][0]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    mine = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    err = client.get("/api/v1/recommendations?capital=1", headers={**HEADERS,
                                                                    "X-Request-ID": "r-422"})
    assert err.json()["request_id"] == "r-422"


def test_request_id_is_in_the_access_log(client: TestClient,
                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="gept.engine.access"):
        client.get("/healthz", headers={"X-Request-ID": "trace-me-42"})
    records = [r for r in caplog.records if r.name == "gept.engine.access"]
    assert any(getattr(r, "gept_request_id", None) == "trace-me-42" for r in records)


def test_rate_limit_answers_429_with_retry_after(
        market: object, make_client: ClientFactory) -> None:
    client = make_client(engine_rate_limit_per_minute=3)
    codes = [client.get("/api/v1/models", headers=HEADERS).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    resp = client.get("/api/v1/models", headers=HEADERS)
    assert int(resp.headers["Retry-After"]) >= 1
    # Wrong keys share one anonymous bucket per client: rotating guesses buys nothing.
    guesses = [client.get("/api/v1/models", headers={"X-API-Key": f"guess-{i}"}).status_code
               for i in range(5)]
    assert 429 in guesses


def test_metrics_use_the_contract_names(client: TestClient) -> None:
    client.get("/api/v1/recommendations?capital=100000", headers=HEADERS)
    client.get("/api/v1/predictions/999999", headers=HEADERS)
    text = client.get("/metrics").text
    for name in ("gept_engine_requests_total", "gept_engine_request_duration_seconds_bucket",
                 "gept_predictions_age_seconds", "gept_engine_db_up", "gept_models_active"):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    assert re.search(r'^gept_engine_requests_total\{method="GET",'
                     r'route="/api/v1/recommendations",status="200"\} 1\.0$', text, re.M)
    # Routes are labelled by template, not by raw path (bounded cardinality).
    assert 'route="/api/v1/predictions/{item_id}",status="404"' in text
    assert re.search(r"^gept_engine_db_up 1\.0$", text, re.M)
    assert re.search(r"^gept_models_active 1\.0$", text, re.M)
    age_line = re.search(r"^gept_predictions_age_seconds (\S+)$", text, re.M)
    assert age_line is not None
    age = float(age_line.group(1))
    assert 0 <= age < 600


def test_openapi_documents_the_key_and_the_parameters(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/recommendations"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["capital"]["required"] is True
    assert params["capital"]["schema"]["minimum"] == 1000
    assert params["slots"]["schema"]["maximum"] == 20        # 8 unless user_tier=unlimited
    assert set(params["style"]["schema"]["enum"]) == {"active", "hybrid", "passive"}
    assert {"APIKeyHeader": []} in op["security"]
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]
    assert "security" not in spec["paths"]["/api/v1/health"]["get"]
    assert client.get("/docs").status_code == 200


def test_metrics_report_inference_runs_per_role(client: TestClient, engine_env: str) -> None:
    import psycopg
    with psycopg.connect(engine_env) as conn:
        conn.execute(
            "INSERT INTO inference_runs (run_id, role, host, started_at, finished_at, status) "
            "VALUES ('p1', 'primary', 'hydra', now() - interval '10 min', "
            "        now() - interval '9 min', 'completed'),"
            "       ('p2', 'primary', 'hydra', now() - interval '5 min', NULL, 'failed'),"
            "       ('f1', 'fallback', 'ampere', now() - interval '4 min', "
            "        now() - interval '3 min', 'completed')")
    text = client.get("/metrics").text
    assert re.search(r'^gept_inference_last_run_failed\{role="primary"\} 1\.0$', text, re.M)
    assert re.search(r'^gept_inference_last_run_failed\{role="fallback"\} 0\.0$', text, re.M)
    primary_line = re.search(r'^gept_inference_last_success_timestamp_seconds'
                             r'\{role="primary"\} (\S+)$', text, re.M)
    fallback_line = re.search(r'^gept_inference_last_success_timestamp_seconds'
                              r'\{role="fallback"\} (\S+)$', text, re.M)
    assert primary_line is not None
    assert fallback_line is not None
    primary, fallback = float(primary_line.group(1)), float(fallback_line.group(1))
    assert fallback - primary == pytest.approx(360, abs=5)
