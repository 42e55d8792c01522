"""Crowding control: many users are not sent into the same item at once.

An item is *crowded* for a user when ``limit`` other users hold it: either it was recommended
to them within the last ``window_seconds`` (deliveries, in memory per worker) or they have an
open trade in it (the persistent trade registry, counted by :mod:`gept.engine.trades`). A user
who already holds the item keeps seeing it. Requests without ``user_id`` are not tracked.

Example:
    >>> c = Crowding(limit=1, window_seconds=60)
    >>> c.record("alice", [4151], now=0.0)
    >>> c.crowded(4151, "bob", now=1.0), c.crowded(4151, "alice", now=1.0)
    (True, False)
"""

from __future__ import annotations

import time
from collections.abc import Iterable


class Crowding:
    """Deliveries per item (user -> last time) and open positions per item."""

    MAX_USERS_PER_ITEM = 10_000

    def __init__(self, *, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window = window_seconds
        self._deliveries: dict[int, dict[str, float]] = {}
        self._positions: dict[int, frozenset[str]] = {}

    def set_positions(self, positions: dict[int, frozenset[str]]) -> None:
        """Replace the open positions (item -> users with an open trade)."""
        self._positions = positions

    def holders(self, item_id: int, now: float | None = None) -> set[str]:
        """Users holding the item: recent deliveries and open trades."""
        now = time.monotonic() if now is None else now
        recent = self._deliveries.get(item_id, {})
        users = {u for u, at in recent.items() if now - at <= self.window}
        return users | self._positions.get(item_id, frozenset())

    def crowded(self, item_id: int, user: str | None, now: float | None = None) -> bool:
        """True when ``limit`` other users already hold the item (never for no user)."""
        if self.limit <= 0 or user is None:
            return False
        holders = self.holders(item_id, now)
        if user in holders:
            return False
        return len(holders) >= self.limit

    def record(self, user: str | None, items: Iterable[int], now: float | None = None) -> None:
        """Remember that ``items`` were recommended to ``user``."""
        if user is None or self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        for item in items:
            users = self._deliveries.setdefault(item, {})
            if len(users) >= self.MAX_USERS_PER_ITEM:
                cutoff = now - self.window
                for u in [u for u, at in users.items() if at < cutoff]:
                    del users[u]
            users[user] = now

    def stats(self) -> dict[str, int]:
        """Tracked items and open positions (for health)."""
        return {"items_tracked": len(self._deliveries),
                "items_with_open_trades": len(self._positions), "limit": self.limit}
