"""Prometheus metrics of the collectors; the names are a contract (alerts, dashboards, checks).

Two sources, the same names:

* :class:`CollectorMetrics`: the live counters of one collector process, served on its own
  port (``GEPT_METRICS_PORT``, 9100–9105);
* :class:`LedgerCollector`: the same metrics for all collectors, derived from
  ``collector_runs`` at scrape time, served by the status page at ``/metrics`` so Prometheus
  can scrape one place.

Example:
    >>> m = CollectorMetrics("5m")
    >>> m.observe_run(ok=True, rows=4000, at=1767225600.0)
    >>> b'gept_collector_rows_written_total{collector="5m"} 4000.0' in m.render()
    True
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gept.collectors.runs import CollectorTotals
from gept.core.config import COLLECTOR_INTERVALS, COLLECTOR_METRICS_PORTS
from gept.core.errors import ConfigError

log = logging.getLogger(__name__)

RUNS = "gept_collector_runs_total"
FAILURES = "gept_collector_failures_total"
ROWS = "gept_collector_rows_written_total"
LAST_SUCCESS = "gept_collector_last_success_timestamp_seconds"
INTERVAL = "gept_collector_interval_seconds"
PORTS = COLLECTOR_METRICS_PORTS
"""Each collector's metrics port (``gept.core.config.COLLECTOR_METRICS_PORTS``)."""

_HELP = {
    RUNS: "Collector runs (fetch + write attempts).",
    FAILURES: "Collector runs that failed (upstream or database).",
    ROWS: "New rows written by the collector.",
    LAST_SUCCESS: "Unix time of the collector's last successful write (0: never).",
    INTERVAL: "The collector's configured interval in seconds.",
}


class CollectorMetrics:
    """The metrics of one collector process, in their own registry."""

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=True)
        label = ["collector"]
        # prometheus_client adds the "_total" suffix to counters itself.
        self.runs = Counter(RUNS.removesuffix("_total"), _HELP[RUNS], label,
                            registry=self.registry).labels(collector)
        self.failures = Counter(FAILURES.removesuffix("_total"), _HELP[FAILURES], label,
                                registry=self.registry).labels(collector)
        self.rows = Counter(ROWS.removesuffix("_total"), _HELP[ROWS], label,
                            registry=self.registry).labels(collector)
        self.last_success = Gauge(LAST_SUCCESS, _HELP[LAST_SUCCESS], label,
                                  registry=self.registry).labels(collector)
        self.interval = Gauge(INTERVAL, _HELP[INTERVAL], label,
                              registry=self.registry).labels(collector)
        self.interval.set(COLLECTOR_INTERVALS.get(collector, 0))
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def observe_run(self, *, ok: bool, rows: int = 0, at: float | None = None) -> None:
        """Count one run; ``rows`` new rows; ``at`` the time of a successful write."""
        self.runs.inc()
        if not ok:
            self.failures.inc()
        self.observe_write(rows, at)

    def observe_write(self, rows: int, at: float | None) -> None:
        """Count rows written (also for a batch written late, after an outage)."""
        if rows:
            self.rows.inc(rows)
        if at is not None:
            self.last_success.set(at)

    def render(self) -> bytes:
        """The exposition text (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread (port 0: not at all)."""
        if port <= 0:
            return
        import prometheus_client
        from prometheus_client import start_http_server

        # A collector process exports only the contract series, not *_created companions.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        try:
            started = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
                              field="metrics_port") from exc
        if isinstance(started, tuple):  # prometheus_client >= 0.20 returns (server, thread)
            self._server, self._thread = started
        log.info("metrics of collector %s on http://%s:%d/metrics", self.collector, host, port)

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class LedgerCollector(Collector):
    """A custom collector: the contract metrics of every collector, from ``collector_runs``.

    Args:
        load: returns the totals (usually ``runs.totals`` on a fresh connection); an error
            makes the scrape fail loudly rather than report zeros.
    """

    def __init__(self, load: Callable[[], dict[str, CollectorTotals]]) -> None:
        self._load = load

    def collect(self) -> Iterator[Metric]:
        """Yield the five metric families."""
        data = self._load()
        runs = CounterMetricFamily(RUNS.removesuffix("_total"), _HELP[RUNS],
                                   labels=["collector"])
        fails = CounterMetricFamily(FAILURES.removesuffix("_total"), _HELP[FAILURES],
                                    labels=["collector"])
        rows = CounterMetricFamily(ROWS.removesuffix("_total"), _HELP[ROWS],
                                   labels=["collector"])
        last = GaugeMetricFamily(LAST_SUCCESS, _HELP[LAST_SUCCESS], labels=["collector"])
        interval = GaugeMetricFamily(INTERVAL, _HELP[INTERVAL], labels=["collector"])
        for name, t in data.items():
            runs.add_metric([name], t.runs)
            fails.add_metric([name], t.failures)
            rows.add_metric([name], t.rows_written)
            last.add_metric([name], t.last_success.timestamp() if t.last_success else 0.0)
            interval.add_metric([name], COLLECTOR_INTERVALS.get(name, 0))
        yield from (runs, fails, rows, last, interval)


def render_ledger(load: Callable[[], dict[str, CollectorTotals]]) -> bytes:
    """The exposition text of :class:`LedgerCollector` (one scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(load))
    return generate_latest(registry)
