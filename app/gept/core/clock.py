"""Time in one place, so block alignment is the same for every collector and test."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def align(ts: datetime, step_seconds: int) -> datetime:
    """Round a time down to the start of its block.

    Example:
        >>> align(datetime(2026, 1, 1, 12, 7, 31, tzinfo=UTC), 300).isoformat()
        '2026-01-01T12:05:00+00:00'
    """
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step_seconds, UTC)


def from_epoch(seconds: int | float) -> datetime:
    """A UTC datetime from Unix seconds."""
    return datetime.fromtimestamp(seconds, UTC)
