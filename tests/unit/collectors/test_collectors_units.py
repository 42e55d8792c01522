"""Pure parts of the collectors: scheduling, gaps, freshness, rendering, parsing of times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gept.collectors import gaps
from gept.collectors.backfill import block_range
from gept.collectors.cli import parse_time
from gept.collectors.jobs import Batch
from gept.collectors.metrics import CollectorMetrics
from gept.collectors.runner import CollectorRunner
from gept.collectors.runs import CollectorState, RunRecord, RunStatus
from gept.collectors.status import human_age, human_interval, render_html
from gept.core.config import COLLECTOR_INTERVALS
from gept.core.errors import InvalidInput
from gept.db.writer import WriteResult
from gept.market.client import WikiClient

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def state(name: str, ago: float | None, last_status: RunStatus = "ok") -> CollectorState:
    success = NOW - timedelta(seconds=ago) if ago is not None else None
    last = RunRecord(name, started_at=NOW - timedelta(seconds=5), status=last_status)
    return CollectorState(name, COLLECTOR_INTERVALS[name], last, success, 10, 1, 0, 10, NOW)


@pytest.mark.parametrize(("name", "ago", "last", "expected"), [
    ("5m", 599, "ok", "ok"),          # just under 2 x 300 s
    ("5m", 601, "ok", "stale"),
    ("latest", 121, "ok", "stale"),
    ("1h", 60, "failed", "failing"),
    ("news", None, "failed", "never"),
])
def test_state_is_stale_after_twice_the_interval(name: str, ago: float | None, last: RunStatus,
                                                 expected: str) -> None:
    assert state(name, ago, last).state == expected


def test_html_marks_stale_rows_red_and_escapes_errors() -> None:
    data: dict[str, Any] = {"generated_at": NOW.isoformat(), "ok": False, "stale": ["latest"],
            "collectors": [state("5m", 30).to_dict(), state("latest", 900).to_dict()],
            "gaps": {"open": [], "unrecoverable": []}}
    data["collectors"][1]["last_run"]["error"] = "<script>alert(1)</script>"
    page = render_html(data)
    assert '<tr class="stale" data-collector="latest" data-state="stale">' in page
    assert '<tr class="ok" data-collector="5m" data-state="ok">' in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "15 min ago" in page


@pytest.mark.parametrize(("seconds", "text"), [(None, "never"), (42, "42 s ago"),
                                               (420, "7 min ago"), (12_600, "3.5 h ago"),
                                               (259_200, "3.0 d ago")])
def test_human_age(seconds: float | None, text: str) -> None:
    assert human_age(seconds) == text


def test_human_interval_names_every_configured_interval() -> None:
    assert [human_interval(s) for s in COLLECTOR_INTERVALS.values()] == [
        "every 5 min", "every 60 s", "every 1 h", "every 24 h", "every 30 min", "every 5 min"]


def test_ranges_group_consecutive_blocks() -> None:
    t = [NOW + timedelta(minutes=m) for m in (0, 5, 10, 30, 40, 45)]
    assert [(a - NOW, b - NOW) for a, b in gaps.ranges(t, 300)] == [
        (timedelta(0), timedelta(minutes=15)), (timedelta(minutes=30), timedelta(minutes=35)),
        (timedelta(minutes=40), timedelta(minutes=50))]
    assert gaps.ranges([], 300) == []


def test_unknown_table_names_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        gaps.table_for("15m")
    assert exc.value.details["field"] == "table"


def test_block_range_aligns_and_bounds() -> None:
    blocks = block_range(NOW + timedelta(seconds=70), NOW + timedelta(minutes=11), 300)
    assert blocks == [NOW, NOW + timedelta(minutes=5), NOW + timedelta(minutes=10)]
    with pytest.raises(InvalidInput, match="after"):
        block_range(NOW, NOW, 300)
    with pytest.raises(InvalidInput, match="timezone"):
        block_range(NOW.replace(tzinfo=None), NOW + timedelta(hours=1), 300)
    with pytest.raises(InvalidInput, match="at most"):
        block_range(NOW, NOW + timedelta(days=3650), 300)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-05T12:00", NOW), ("2026-01-05T12:00Z", NOW), ("2026-01-05T13:00+01:00", NOW),
    (str(int(NOW.timestamp())), NOW)])
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, "since") == expected


def test_parse_time_refuses_words_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_time("last tuesday", "until")
    assert exc.value.details["field"] == "until"


@pytest.fixture
def client() -> WikiClient:
    return WikiClient("http://127.0.0.1:9", "gept-tests/0.1 (ops@example.org)")


def test_next_due_is_the_next_boundary_plus_the_publish_lag(client: WikiClient) -> None:
    runner = CollectorRunner("5m", client, dsn="postgresql://unused@127.0.0.1:1/x")
    base = NOW.timestamp()
    assert runner.next_due(base + 1) == base + 15
    assert runner.next_due(base + 20) == base + 300 + 15
    latest = CollectorRunner("latest", client, dsn="postgresql://unused@127.0.0.1:1/x")
    assert latest.next_due(base + 59.5) == base + 60


def test_unknown_collector_is_refused(client: WikiClient) -> None:
    with pytest.raises(InvalidInput):
        CollectorRunner("2m", client)


def test_pending_queue_is_bounded_and_drops_the_oldest(client: WikiClient) -> None:
    runner = CollectorRunner("5m", client, max_pending=2)

    def noop(_conn: object, _bc: object) -> WriteResult:
        return WriteResult("price_data_5min", 0, 0)

    batches = [Batch(RunRecord("5m", block_time=NOW + timedelta(minutes=5 * i)), 0, 0, noop)
               for i in range(3)]
    for b in batches:
        runner._enqueue(b)
    assert list(runner.pending) == batches[1:]
    assert runner.dropped == 1


def test_process_metrics_use_the_contract_names() -> None:
    m = CollectorMetrics("players")
    m.observe_run(ok=False)
    m.observe_run(ok=True, rows=1, at=1767614400.0)
    text = m.render().decode()
    for line in ('gept_collector_runs_total{collector="players"} 2.0',
                 'gept_collector_failures_total{collector="players"} 1.0',
                 'gept_collector_rows_written_total{collector="players"} 1.0',
                 'gept_collector_last_success_timestamp_seconds{collector="players"} 1.7676144e+09',
                 'gept_collector_interval_seconds{collector="players"} 300.0'):
        assert line in text
