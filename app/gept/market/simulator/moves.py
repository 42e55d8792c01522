"""Scripted price moves: an item's price jumps (drops or rises) by a factor from a chosen time.

The synthetic market is a pure function of ``(seed, item, time)``; a move makes it a pure
function of ``(seed, item, time, moves)``. A move multiplies an item's mid price by
``1 + change`` for every instant in ``[since, until)``, so every view agrees on it: the
5-minute and hourly blocks whose midpoint falls in the interval, ``/latest`` trades made in
it, ``/timeseries`` points. Trades made before ``since`` keep their price, as on the real
exchange: a thin item's ``/latest`` shows the move only once it trades again.

Moves are scripted against the simulator's clock (``/_sim/clock``), so a move can be set in
the future and happen on its own. Tests and operators set them through ``/_sim/moves`` (the
control API, apart from the real API's routes) or ``gept market move``.

Example:
    >>> move = PriceMove.from_doc({"item": 4151, "change": -0.15, "at": 1767225600}, now=0)
    >>> move.item_id, move.factor, move.since
    (4151, 0.85, 1767225600.0)
    >>> move.applies(1767225600.0), move.applies(1767225599.0)
    (True, False)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gept.core.errors import InvalidInput

MAX_MOVES = 1_000
"""More moves than this is a runaway script, not a test: refused."""


@dataclass(frozen=True, slots=True)
class PriceMove:
    """One item's price multiplied by ``1 + change`` from ``since`` until ``until``.

    Attributes:
        item_id: the item (an id of ``/mapping``).
        change: the relative move, e.g. -0.15 for a 15 % drop; more than -1.
        since: Unix seconds from which the move holds (inclusive).
        until: Unix seconds at which it ends (exclusive); None: for good.
    """

    item_id: int
    change: float
    since: float
    until: float | None = None

    @property
    def factor(self) -> float:
        """What the mid price is multiplied by."""
        return round(1.0 + self.change, 12)

    @property
    def log_factor(self) -> float:
        """The move on the market's log-price scale."""
        return math.log(self.factor)

    def applies(self, epoch: float) -> bool:
        """Whether the move holds at ``epoch``."""
        return self.since <= epoch and (self.until is None or epoch < self.until)

    def to_doc(self) -> dict[str, Any]:
        """The move as ``/_sim/moves`` shows it."""
        return {"item": self.item_id, "change": self.change, "since": self.since,
                "until": self.until}

    @classmethod
    def from_doc(cls, doc: object, now: float,
                 parse_time: Callable[[object], float] | None = None) -> PriceMove:
        """A move from ``{"item", "change", "at"?, "until"?}`` (``at`` defaults to ``now``).

        ``at`` and ``until`` are Unix seconds, or ISO times when ``parse_time`` reads them.

        Raises:
            InvalidInput: for a missing item, a change of -100 % or less, or an end
                before the start.
        """
        if not isinstance(doc, dict):
            raise InvalidInput("a move is an object {item, change, at?, until?}", field="moves")
        item, change = doc.get("item"), doc.get("change")
        if not isinstance(item, int) or isinstance(item, bool) or item <= 0:
            raise InvalidInput("'item' must be a positive item id", field="item")
        if not isinstance(change, int | float) or isinstance(change, bool) \
                or not math.isfinite(change) or change <= -1.0 or change > 100.0:
            raise InvalidInput("'change' must be a fraction above -1 (e.g. -0.15 for -15 %)",
                               field="change")
        read = parse_time or _seconds
        since = read(doc["at"]) if doc.get("at") is not None else now
        until = read(doc["until"]) if doc.get("until") is not None else None
        if until is not None and until <= since:
            raise InvalidInput("'until' must come after 'at'", field="until")
        return cls(item, float(change), float(since), None if until is None else float(until))


def _seconds(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidInput("times must be Unix seconds", field="at")


class MoveBook:
    """The market's scripted moves, shared by every handler thread.

    Readers take ``moves`` (an immutable tuple) without locking; ``version`` changes with
    every edit, so caches of rendered answers know when to forget.

    Example:
        >>> book = MoveBook()
        >>> book.add(PriceMove(2, -0.5, 0.0))
        1
        >>> [m.item_id for m in book.moves], book.version
        ([2], 1)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.moves: tuple[PriceMove, ...] = ()
        self.version = 0

    def add(self, move: PriceMove) -> int:
        """Add one move; returns how many are set.

        Raises:
            InvalidInput: past ``MAX_MOVES``.
        """
        with self._lock:
            if len(self.moves) >= MAX_MOVES:
                raise InvalidInput(f"at most {MAX_MOVES} moves; clear them first",
                                   field="moves")
            self.moves = (*self.moves, move)
            self.version += 1
            return len(self.moves)

    def clear(self) -> None:
        """Remove every move: the market is back to its seed alone."""
        with self._lock:
            self.moves = ()
            self.version += 1

    def state(self) -> dict[str, Any]:
        """What ``GET /_sim/moves`` answers."""
        return {"moves": [m.to_doc() for m in self.moves], "version": self.version}
