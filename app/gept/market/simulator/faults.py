"""Fault injection and the controllable clock of the simulator.

A fault is chosen for each market request, first match wins:

1. the request asks for one: ``?fault=429`` or the header ``X-Sim-Fault: 503``;
2. the scripted queue (``FaultPlan.push`` or ``POST /_sim/faults {"next": [...]}``): the next
   N matching requests get these faults, in order;
3. the random rate (``FaultPlan.set_rate`` or ``{"rate": 0.1, "kinds": [...]}``), drawn from a
   seeded generator so a run is repeatable.

Kinds: any HTTP error status (``"429"``, ``"500"``, ``"503"``, ``"404"``...), ``"timeout"``
(answer only after ``delay`` seconds), ``"slow"`` (trickle the body over ``delay`` seconds),
``"malformed"`` (truncated JSON), ``"wrong-types"`` (strings where integers belong),
``"empty"`` (200 with an empty body), ``"reset"`` (close the connection without answering).

Example:
    >>> plan = FaultPlan()
    >>> plan.push(["429", Fault("503")], paths=["/5m"])
    >>> plan.choose("/latest", None) is None, plan.choose("/5m", None).kind
    (True, '429')
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gept.core.errors import InvalidInput

NAMED_KINDS = frozenset({"timeout", "slow", "malformed", "wrong-types", "empty", "reset"})
MAX_DELAY = 30.0
"""No fault holds a request longer than this, so a test can never hang on the simulator."""
DEFAULT_DELAY = 5.0


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to apply to one response.

    Attributes:
        kind: an HTTP status (``"503"``) or a named kind (see the module docs).
        retry_after: the ``Retry-After`` header for 429/503: seconds (``"2"``) or ``"date:N"``
            for an HTTP date N seconds ahead. Default ``"1"`` for 429, none otherwise.
        delay: seconds for ``timeout`` and ``slow`` (capped at ``MAX_DELAY``).
    """

    kind: str
    retry_after: str | None = None
    delay: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in NAMED_KINDS and not (self.kind.isdigit()
                                                 and 400 <= int(self.kind) <= 599):
            raise InvalidInput(f"unknown fault {self.kind!r}: use an HTTP error status "
                               f"(400-599) or one of {', '.join(sorted(NAMED_KINDS))}",
                               field="fault")
        if self.delay is not None and not 0 <= self.delay <= MAX_DELAY:
            raise InvalidInput(f"fault delay must be within [0, {MAX_DELAY}]", field="delay")

    @property
    def status(self) -> int | None:
        """The HTTP status for status faults, else None."""
        return int(self.kind) if self.kind.isdigit() else None

    def seconds(self) -> float:
        """How long ``timeout``/``slow`` take."""
        return DEFAULT_DELAY if self.delay is None else self.delay

    @classmethod
    def parse(cls, spec: str | dict[str, Any] | Fault) -> Fault:
        """A fault from ``"503"``, ``{"kind": "timeout", "delay": 2}`` or a ``Fault``."""
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, str):
            return cls(spec.strip())
        if isinstance(spec, dict) and isinstance(spec.get("kind"), str):
            delay = spec.get("delay")
            ra = spec.get("retry_after")
            if delay is not None and not isinstance(delay, int | float):
                raise InvalidInput("fault delay must be a number", field="delay")
            return cls(spec["kind"], None if ra is None else str(ra),
                       None if delay is None else float(delay))
        raise InvalidInput(f"cannot read fault {spec!r}", field="fault")


class FaultPlan:
    """The faults the server will inject: a scripted queue and a random rate. Thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[Fault, frozenset[str] | None]] = deque()
        self._rate = 0.0
        self._kinds: tuple[Fault, ...] = ()
        self._rate_paths: frozenset[str] | None = None
        self._rng = random.Random(seed)
        self.injected: dict[str, int] = {}

    def push(self, faults: Iterable[str | dict[str, Any] | Fault],
             paths: Iterable[str] | None = None) -> None:
        """Script the next matching requests (``paths`` None: every market endpoint)."""
        parsed = [Fault.parse(f) for f in faults]
        scope = frozenset(paths) if paths is not None else None
        with self._lock:
            self._queue.extend((f, scope) for f in parsed)

    def set_rate(self, rate: float, kinds: Iterable[str | dict[str, Any] | Fault],
                 paths: Iterable[str] | None = None) -> None:
        """Inject one of ``kinds`` (uniformly) into a ``rate`` fraction of requests."""
        if not 0.0 <= rate <= 1.0:
            raise InvalidInput("fault rate must be within [0, 1]", field="rate")
        parsed = tuple(Fault.parse(k) for k in kinds)
        if rate > 0 and not parsed:
            raise InvalidInput("a fault rate needs at least one kind", field="kinds")
        with self._lock:
            self._rate, self._kinds = rate, parsed
            self._rate_paths = frozenset(paths) if paths is not None else None

    def clear(self) -> None:
        """No more faults: empty the queue and set the rate to 0."""
        with self._lock:
            self._queue.clear()
            self._rate, self._kinds, self._rate_paths = 0.0, (), None

    def choose(self, path: str, requested: Fault | None) -> Fault | None:
        """The fault for one request to ``path`` (None: answer normally)."""
        with self._lock:
            fault = requested
            if fault is None:
                for i, (queued, scope) in enumerate(self._queue):
                    if scope is None or path in scope:
                        fault = queued
                        del self._queue[i]
                        break
            if (fault is None and self._rate > 0
                    and (self._rate_paths is None or path in self._rate_paths)
                    and self._rng.random() < self._rate):
                fault = self._kinds[self._rng.randrange(len(self._kinds))]
            if fault is not None:
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
            return fault

    def state(self) -> dict[str, Any]:
        """What is scripted, for ``GET /_sim/faults``."""
        with self._lock:
            return {
                "queue": [{"kind": f.kind, "retry_after": f.retry_after, "delay": f.delay,
                           "paths": sorted(s) if s is not None else None}
                          for f, s in self._queue],
                "rate": self._rate,
                "kinds": [f.kind for f in self._kinds],
                "rate_paths": sorted(self._rate_paths) if self._rate_paths else None,
                "injected": dict(self.injected),
            }


class SimClock:
    """The simulator's "now": the real time, or a time a test has set (frozen or running).

    Example:
        >>> clock = SimClock()
        >>> clock.set(1767225600)
        >>> clock.now()
        1767225600.0
        >>> clock.advance(300); clock.now()
        1767225900.0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fixed: float | None = None
        self._offset = 0.0

    def now(self) -> float:
        """Unix seconds."""
        with self._lock:
            return self._fixed if self._fixed is not None else time.time() + self._offset

    def set(self, epoch: float, frozen: bool = True) -> None:
        """Make "now" ``epoch``; frozen stays there, otherwise time runs on from it."""
        with self._lock:
            if frozen:
                self._fixed, self._offset = float(epoch), 0.0
            else:
                self._fixed, self._offset = None, float(epoch) - time.time()

    def advance(self, seconds: float) -> None:
        """Move "now" forward (or back, when negative)."""
        with self._lock:
            if self._fixed is not None:
                self._fixed += seconds
            else:
                self._offset += seconds

    def reset(self) -> None:
        """Back to the real time."""
        with self._lock:
            self._fixed, self._offset = None, 0.0

    def state(self) -> dict[str, Any]:
        """For ``GET /_sim/clock``."""
        with self._lock:
            frozen = self._fixed is not None
        return {"now": self.now(), "frozen": frozen}
