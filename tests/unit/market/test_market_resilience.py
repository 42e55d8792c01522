"""Backoff timing, Retry-After parsing and the circuit breaker's states."""

from __future__ import annotations

import random

import pytest

from gept.market.resilience import CircuitBreaker, CircuitState, RetryPolicy, parse_retry_after


def state(breaker: CircuitBreaker) -> CircuitState:
    """The breaker's state now. Read through a call: mypy would keep ``breaker.state``
    narrowed to what the previous assert said, though the clock and calls change it."""
    return breaker.state


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_within_it() -> None:
    policy = RetryPolicy(attempts=8, base_delay=1.0, max_delay=10.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    jittered = RetryPolicy(base_delay=2.0, max_delay=60.0, jitter=0.5)
    rng = random.Random(3)
    delays = [jittered.delay(3, rng) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # really randomised


def test_retry_after_wins_over_backoff_but_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=0.0, retry_after_cap=30.0)
    assert policy.wait_for(1, 7.0) == 7.0
    assert policy.wait_for(1, 3600.0) == 30.0
    assert policy.wait_for(2, None) == 2.0


@pytest.mark.parametrize(("header", "expected"), [
    ("5", 5.0), (" 12 ", 12.0), ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0),
    ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0), ("soon", None), (None, None), ("-3", None),
])
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=40.0) == expected


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=2.0)


def test_breaker_opens_at_threshold_half_opens_after_cooldown_and_allows_one_trial() -> None:
    now = [0.0]
    cb = CircuitBreaker(threshold=3, cooldown=30.0, clock=lambda: now[0])
    cb.record_failure()
    cb.record_failure()
    assert state(cb) == "closed"
    assert cb.allow()
    cb.record_failure()
    assert state(cb) == "open"
    assert not cb.allow()
    assert cb.retry_in() == 30.0
    now[0] = 29.9
    assert not cb.allow()
    now[0] = 30.0
    assert state(cb) == "half-open"
    assert cb.allow()          # the one trial
    assert not cb.allow()      # nobody else while it is in flight
    cb.record_failure()        # trial failed: open again for a full cool-down
    assert state(cb) == "open"
    assert cb.times_opened == 2
    now[0] = 60.0
    assert cb.allow()
    cb.record_success()
    assert state(cb) == "closed"
    assert cb.allow()
    assert cb.allow()


def test_a_success_resets_the_consecutive_count() -> None:
    cb = CircuitBreaker(threshold=2, cooldown=1.0, clock=lambda: 0.0)
    cb.record_failure()
    cb.record_success()
    cb.record_failure()
    assert state(cb) == "closed"
