"""Retry timing, ``Retry-After`` and a circuit breaker: the client's manners toward the wiki.

The wiki asks heavy users to back off; a collector that hammers a failing API risks being
blocked for everyone. So: exponential backoff with jitter between attempts, the server's
``Retry-After`` honoured (within a cap), and a breaker that stops calling after repeated
failures and lets one trial request through after a cool-down.

Example:
    >>> policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=30.0, jitter=0.0)
    >>> [policy.delay(n) for n in (1, 2, 3)]
    [1.0, 2.0, 4.0]
    >>> parse_retry_after("7", now=0.0)
    7.0
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

CircuitState = Literal["closed", "open", "half-open"]
CIRCUIT_STATE_CODES: dict[CircuitState, int] = {"closed": 0, "open": 1, "half-open": 2}
"""Numeric states for the ``circuit_state`` gauge (as production's collectors export it)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to try and how long to wait between tries.

    Attributes:
        attempts: total tries per call (1 = no retry).
        base_delay: the wait before the second try; doubles after each failure.
        max_delay: no computed wait exceeds this.
        jitter: fraction of each wait that is randomised (0 = exact, 1 = "full jitter"),
            so many collectors restarted together do not retry in lockstep.
        retry_after_cap: the longest ``Retry-After`` honoured; a server asking for an hour
            gets ``retry_after_cap`` and the call fails sooner rather than hanging.
    """

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5
    retry_after_cap: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait after the ``failures``-th consecutive failure (1-based)."""
        raw = min(self.max_delay, self.base_delay * 2 ** max(0, failures - 1))
        if self.jitter == 0.0:
            return float(raw)
        r = random.random() if rng is None else rng.random()
        return float(raw * (1.0 - self.jitter) + raw * self.jitter * r)

    def wait_for(self, failures: int, retry_after: float | None,
                 rng: random.Random | None = None) -> float:
        """The wait before the next try: the server's ``Retry-After`` if it sent one."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.retry_after_cap)
        return self.delay(failures, rng)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns None when the header is absent or unreadable (the caller falls back to backoff).

    Example:
        >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0)
        60.0
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; half-opens after ``cooldown`` seconds.

    Closed: calls pass. Open: calls are refused until the cool-down ends. Half-open: exactly
    one trial call passes; its success closes the breaker, its failure re-opens it for
    another cool-down. Thread-safe.

    Example:
        >>> t = [0.0]
        >>> cb = CircuitBreaker(threshold=2, cooldown=60.0, clock=lambda: t[0])
        >>> cb.record_failure(); cb.record_failure(); cb.state
        'open'
        >>> cb.allow()
        False
        >>> t[0] = 61.0; cb.allow(), cb.state
        (True, 'half-open')
        >>> cb.record_success(); cb.state
        'closed'
    """

    def __init__(self, threshold: int = 5, cooldown: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self.times_opened = 0

    @property
    def state(self) -> CircuitState:
        """``closed``, ``open`` or ``half-open`` (open whose cool-down has ended)."""
        with self._lock:
            return self._state()

    def _state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def retry_in(self) -> float:
        """Seconds until the next trial call is allowed (0 when closed)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open, only one trial at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "open" or self._trial_in_flight:
                return False
            self._trial_in_flight = True
            return True

    def record_success(self) -> None:
        """A call succeeded: close the breaker."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        """A call failed: count it; open (or re-open) at the threshold or after a trial."""
        with self._lock:
            self._failures += 1
            was_trial = self._trial_in_flight
            self._trial_in_flight = False
            if was_trial or (self._opened_at is None and self._failures >= self.threshold):
                self._opened_at = self._clock()
                self.times_opened += 1

    def release(self) -> None:
        """A call ended neither in success nor upstream failure (e.g. a 404): free the trial."""
        with self._lock:
            self._trial_in_flight = False
