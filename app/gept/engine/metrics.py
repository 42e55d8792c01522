"""Prometheus metrics of the engine. Names are a contract: the alert rules
(``deploys/templates/monitoring/alerts.yml.j2``) use exactly these, and
``tests/unit/monitoring/test_metric_names.py`` fails when a rule names one nobody exports.

Request metrics are counted by the request middleware; the gauges are set when ``/metrics``
is scraped (freshness from memory, the registry and inference state with one statement).
Each app gets its own registry, so several apps (tests) in one process do not collide.
With ``gept serve --workers N`` each worker keeps its own counters; one worker is the
recommended production setting (it serves well above the web app's load).

Example:
    >>> m = EngineMetrics()
    >>> m.requests.labels("GET", "/healthz", "200").inc()
    >>> b"gept_engine_requests_total" in m.render()
    True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Buckets tuned for an engine whose requests should take about a millisecond.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class EngineMetrics:
    """The engine's metric families, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("gept_engine_requests", "Requests served by the engine.",
                                ["method", "route", "status"], registry=r)
        self.duration = Histogram("gept_engine_request_duration_seconds",
                                  "Time to answer a request.", ["route"], buckets=_BUCKETS,
                                  registry=r)
        self.predictions_age = Gauge("gept_predictions_age_seconds",
                                     "Age of the newest predictions batch (+Inf when none).",
                                     registry=r)
        self.db_up = Gauge("gept_engine_db_up", "1 when the engine reaches PostgreSQL.",
                           registry=r)
        self.models_active = Gauge("gept_models_active", "ACTIVE models in the registry.",
                                   registry=r)
        self.inference_last_success = Gauge(
            "gept_inference_last_success_timestamp_seconds",
            "Unix time of the last completed inference run.", ["role"], registry=r)
        self.inference_last_failed = Gauge(
            "gept_inference_last_run_failed", "1 when the newest inference run of the role failed.",
            ["role"], registry=r)
        self.webhook_rejections = Counter(
            "gept_engine_webhook_rejections", "Trade webhooks refused, by reason (unsigned, "
            "bad_timestamp, stale, bad_signature, replayed, invalid_body).", ["reason"],
            registry=r)
        self.webhook_events = Counter("gept_engine_webhook_events",
                                      "Trade webhooks accepted, by event type.", ["event"],
                                      registry=r)
        self.alert_deliveries = Counter(
            "gept_engine_alert_deliveries", "Alert push attempts to the web app, by result "
            "(sent, retry, failed).", ["result"], registry=r)
        self.alert_monitor_lag = Gauge(
            "gept_engine_alert_monitor_lag_seconds",
            "Seconds since the price-drop monitor last completed a pass (+Inf: never).",
            registry=r)
        self.trades_open = Gauge("gept_engine_trades_open",
                                 "Open trades in the engine's trade registry.", registry=r)
        self.predictions_age.set(float("inf"))
        self.alert_monitor_lag.set(float("inf"))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
