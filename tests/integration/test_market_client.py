"""WikiClient against the real simulator over HTTP, one upstream fault at a time.

Sleeps between attempts are injected (recorded, not waited), so these tests check the
client's decisions (how often, how long, when to give up) without spending that time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gept.core.config import Settings
from gept.core.errors import ConfigError, InvalidInput, UpstreamError
from gept.market.client import WikiClient
from gept.market.errors import (
    CircuitOpen,
    MalformedResponse,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gept.market.resilience import CircuitBreaker, CircuitState, RetryPolicy
from gept.market.simulator import SimulatorServer

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
UA = "gept-tests/0.1 (ops@example.org)"
ITEMS = 120


def traded(sim: SimulatorServer) -> int:
    """Rows of the latest complete 5-minute block: the items that traded in it."""
    return len(sim.market.block(NOW - timedelta(minutes=5)).rows)


def state(breaker: CircuitBreaker) -> CircuitState:
    """The breaker's state now. Read through a call: mypy would keep ``breaker.state``
    narrowed to what the previous assert said, though the clock and calls change it."""
    return breaker.state


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(items=ITEMS, seed=21) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim: SimulatorServer) -> None:
    sim.reset()
    sim.clock.set(NOW.timestamp())


class Sleeps(list[float]):
    """Records the waits the client asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


MakeClient = Callable[..., WikiClient]


@pytest.fixture
def make_client(sim: SimulatorServer) -> Iterator[MakeClient]:
    made: list[WikiClient] = []

    def make(**kw: Any) -> WikiClient:
        kw.setdefault("retry", RetryPolicy(attempts=4, base_delay=1.0, jitter=0.0))
        kw.setdefault("sleep", Sleeps())
        kw.setdefault("timeout", 5.0)
        client = WikiClient(sim.url, UA, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def served(sim: SimulatorServer, path: str) -> int:
    return sim.requests.get(path, 0)


def test_every_endpoint_returns_exactly_the_markets_rows(sim: SimulatorServer,
                                                         make_client: MakeClient) -> None:
    client = make_client()
    block = NOW - timedelta(minutes=30)
    assert client.five_minute(block) == sim.market.block(block)
    assert client.five_minute().timestamp == NOW - timedelta(minutes=5)
    assert client.hourly(NOW - timedelta(hours=2)) == sim.market.block(
        NOW - timedelta(hours=2), 3600)
    assert client.mapping() == sorted(sim.market.mapping(), key=lambda m: m.item_id)
    assert client.latest() == sim.market.latest(NOW)
    item = sim.market.mapping()[5].item_id
    assert [r.item_id for r in client.latest(item)] == [item]
    series = client.timeseries(item, "5m")
    assert series == sim.market.timeseries(item, 300, NOW)
    assert 0 < len(series) <= 300
    assert client.news(sim.url + "/news.rss")[0].pub_date is not None
    assert client.player_count(sim.url + "/players") > 0
    assert set(sim.user_agents) == {UA}  # every request carried the descriptive agent
    assert client.stats.retries == 0
    assert client.stats.failures == 0


def test_429_waits_as_long_as_retry_after_says(sim: SimulatorServer,
                                               make_client: MakeClient) -> None:
    sleeps = Sleeps()
    client = make_client(sleep=sleeps)
    sim.faults.push([{"kind": "429", "retry_after": "7"}, {"kind": "429",
                                                           "retry_after": "date:60"}])
    snap = client.five_minute()
    assert len(snap.rows) == traded(sim)
    assert sleeps[0] == 7.0
    assert 50.0 < sleeps[1] <= 60.0  # an HTTP date, converted to seconds from now
    assert served(sim, "/5m") == 3


def test_retry_after_is_capped(sim: SimulatorServer, make_client: MakeClient) -> None:
    sleeps = Sleeps()
    client = make_client(sleep=sleeps, retry=RetryPolicy(attempts=2, jitter=0.0,
                                                         retry_after_cap=30.0))
    sim.faults.push([{"kind": "429", "retry_after": "86400"}])
    client.mapping()
    assert sleeps == [30.0]


def test_5xx_is_retried_with_exponential_backoff_then_succeeds(
        sim: SimulatorServer, make_client: MakeClient) -> None:
    sleeps = Sleeps()
    client = make_client(sleep=sleeps)
    sim.faults.push(["500", "503", "502"], paths=["/latest"])
    assert len(client.latest()) == len(sim.market.latest(NOW))
    assert sleeps == [1.0, 2.0, 4.0]
    assert served(sim, "/latest") == 4
    assert client.stats.retries == 3
    assert client.stats.failures == 0


def test_jitter_spreads_the_waits(sim: SimulatorServer, make_client: MakeClient) -> None:
    sleeps = Sleeps()
    client = make_client(sleep=sleeps, retry=RetryPolicy(attempts=4, base_delay=1.0,
                                                         jitter=1.0))
    sim.faults.push(["500", "500", "500"])
    client.mapping()
    assert len(sleeps) == 3
    assert sleeps != [1.0, 2.0, 4.0]
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (1.0, 2.0, 4.0), strict=True))


def test_persistent_failure_raises_after_n_tries(sim: SimulatorServer,
                                                 make_client: MakeClient) -> None:
    client = make_client(retry=RetryPolicy(attempts=3, jitter=0.0))
    sim.faults.set_rate(1.0, ["503"])
    with pytest.raises(UpstreamHTTPError) as info:
        client.hourly()
    assert info.value.http_status == 503
    assert info.value.details["attempts"] == 3
    assert info.value.exit_code == 1
    assert isinstance(info.value, UpstreamError)
    assert served(sim, "/1h") == 3
    assert client.stats.failures == 1


@pytest.mark.parametrize("status", ["400", "404", "403"])
def test_client_errors_other_than_429_are_not_retried(
        sim: SimulatorServer, make_client: MakeClient, status: str) -> None:
    sleeps = Sleeps()
    client = make_client(sleep=sleeps)
    sim.faults.push([status])
    with pytest.raises(UpstreamHTTPError) as info:
        client.mapping()
    assert info.value.http_status == int(status)
    assert sleeps == []
    assert served(sim, "/mapping") == 1
    assert client.breaker.state == "closed"  # the server is up; it just said no


def test_circuit_opens_refuses_without_calling_then_half_opens(
        sim: SimulatorServer, make_client: MakeClient) -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=60.0, clock=lambda: now[0])
    client = make_client(retry=RetryPolicy(attempts=1), breaker=breaker)
    sim.faults.set_rate(1.0, ["500"])
    for _ in range(3):
        with pytest.raises(UpstreamHTTPError):
            client.five_minute()
    assert state(breaker) == "open"
    with pytest.raises(CircuitOpen) as info:
        client.five_minute()
    assert served(sim, "/5m") == 3  # refused locally: the wiki was not called
    assert info.value.retry_in == 60.0
    assert client.stats.circuit_refusals == 1
    now[0] = 61.0  # cool-down over: one trial; it fails, so the circuit re-opens
    with pytest.raises(UpstreamHTTPError):
        client.five_minute()
    assert state(breaker) == "open"
    assert served(sim, "/5m") == 4
    sim.faults.clear()
    now[0] = 122.0  # next trial succeeds and closes the circuit
    assert len(client.five_minute().rows) == traded(sim)
    assert state(breaker) == "closed"
    assert breaker.times_opened == 2


def test_breaker_counts_failed_attempts_within_a_call(sim: SimulatorServer,
                                                      make_client: MakeClient) -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=60.0, clock=lambda: 0.0)
    client = make_client(retry=RetryPolicy(attempts=5, jitter=0.0), breaker=breaker)
    sim.faults.set_rate(1.0, ["503"])
    with pytest.raises(CircuitOpen):
        client.latest()
    assert served(sim, "/latest") == 2  # stopped hammering after the threshold


@pytest.mark.parametrize("kind", ["malformed", "wrong-types", "empty"])
def test_malformed_bodies_are_retried_then_fail_clearly(
        sim: SimulatorServer, make_client: MakeClient, kind: str) -> None:
    client = make_client()
    sim.faults.push([kind])
    assert len(client.five_minute().rows) == traded(sim)  # one bad body, then a good one
    sim.faults.set_rate(1.0, [kind])
    with pytest.raises(MalformedResponse) as info:
        client.five_minute()
    assert info.value.details["attempts"] == 4
    assert info.value.endpoint == "/5m"
    assert served(sim, "/5m") == 2 + 4


def test_a_hung_server_costs_one_timeout_per_attempt_not_the_fault_delay(
        sim: SimulatorServer, make_client: MakeClient) -> None:
    client = make_client(timeout=0.4, retry=RetryPolicy(attempts=2, jitter=0.0))
    sim.faults.push([{"kind": "timeout", "delay": 10}])
    assert len(client.mapping()) == ITEMS  # timed out once, then answered
    sim.faults.set_rate(1.0, [{"kind": "timeout", "delay": 10}])
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        client.mapping()
    assert time.monotonic() - started < 10  # gave up long before the server answered


def test_a_trickling_body_is_bounded_by_the_whole_response_timeout(
        sim: SimulatorServer, make_client: MakeClient) -> None:
    # 20 chunks over 8 s: each read arrives well within httpx's per-read timeout,
    # so only the client's whole-response deadline can stop it.
    client = make_client(timeout=1.0, retry=RetryPolicy(attempts=2, jitter=0.0))
    sim.faults.push([{"kind": "slow", "delay": 8}])
    started = time.monotonic()
    assert len(client.five_minute().rows) == traded(sim)
    assert time.monotonic() - started < 8
    assert client.stats.retries == 1


def test_a_slow_body_within_the_timeout_is_accepted(sim: SimulatorServer,
                                                    make_client: MakeClient) -> None:
    client = make_client(timeout=5.0)
    sim.faults.push([{"kind": "slow", "delay": 0.4}])
    assert len(client.latest()) == len(sim.market.latest(NOW))
    assert client.stats.retries == 0


def test_connection_reset_and_refused_are_unreachable(sim: SimulatorServer,
                                                      make_client: MakeClient) -> None:
    client = make_client()
    sim.faults.push(["reset"])
    assert len(client.mapping()) == ITEMS
    assert client.stats.retries == 1
    dead = SimulatorServer(items=3, seed=1)
    url = dead.url
    dead.stop()
    gone = WikiClient(url, UA, sleep=Sleeps(), retry=RetryPolicy(attempts=2, jitter=0.0))
    with pytest.raises(UpstreamUnreachable):
        gone.mapping()
    gone.close()


def test_each_retry_is_logged(sim: SimulatorServer, make_client: MakeClient,
                              caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    sim.faults.push(["503"])
    with caplog.at_level(logging.WARNING, logger="gept.market.client"):
        client.five_minute()
    assert len(caplog.records) == 1
    assert "/5m attempt 1/4 failed" in caplog.records[0].getMessage()
    assert "HTTP 503" in caplog.records[0].getMessage()


def test_unaligned_or_naive_timestamps_are_refused_before_any_request(
        sim: SimulatorServer, make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(InvalidInput) as info:
        client.five_minute(NOW + timedelta(seconds=30))
    assert info.value.details["field"] == "timestamp"
    assert "300" in info.value.message
    with pytest.raises(InvalidInput, match="3600"):
        client.hourly(NOW + timedelta(minutes=5))
    with pytest.raises(InvalidInput):
        client.five_minute(datetime(2026, 1, 1))
    with pytest.raises(InvalidInput):
        client.timeseries(2, "2m")
    assert sim.requests == {}


def test_user_agent_is_required_and_descriptive() -> None:
    for bad in ("", "   ", "python-httpx/0.28", "Mozilla/5.0 (X11)"):
        with pytest.raises(ConfigError) as info:
            WikiClient("http://127.0.0.1:1", bad)
        assert info.value.details["field"] == "wiki_user_agent"
    with pytest.raises(ConfigError):
        WikiClient.from_settings(Settings(wiki_user_agent=""))
    client = WikiClient.from_settings(Settings(wiki_user_agent=UA, wiki_retries=2))
    assert client.retry.attempts == 2
    assert client.user_agent == UA
    client.close()


def test_an_oversized_body_fails_at_once_without_retry(sim: SimulatorServer,
                                                       make_client: MakeClient) -> None:
    from gept.market.errors import ResponseTooLarge

    client = make_client(max_json_bytes=10_000)
    with pytest.raises(ResponseTooLarge):
        client.mapping()
    assert served(sim, "/mapping") == 1
