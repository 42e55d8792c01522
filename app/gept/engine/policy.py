"""Recommendation policy: what a trading style and a risk appetite mean, in numbers.

A *style* picks the prediction windows (hours until the flip should complete); a *risk*
picks the minimum expected value, the minimum fill probability and the price offsets. These
tables are the whole policy: the SQL that builds the candidate set and the tests read them.

Example:
    >>> STYLES["active"]
    Window(min_hours=1, max_hours=4)
    >>> RISKS["low"].min_fill_probability
    0.08
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Style = Literal["active", "hybrid", "passive"]
Risk = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class Window:
    """The prediction windows (``hour_offset``) a style accepts, inclusive."""

    min_hours: int
    max_hours: int


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What a risk appetite accepts: minimum EV and fill probability, an offset range."""

    min_expected_value: float
    min_fill_probability: float
    min_offset_pct: float
    max_offset_pct: float


# Active traders check in often and want short windows; passive ones leave offers overnight.
STYLES: dict[Style, Window] = {
    "active": Window(1, 4),
    "hybrid": Window(2, 12),
    "passive": Window(8, 24),
}

# Low risk wants likely fills at small margins; high risk accepts unlikely fills at wider ones.
RISKS: dict[Risk, Thresholds] = {
    "low": Thresholds(0.008, 0.08, 0.0125, 0.015),
    "medium": Thresholds(0.005, 0.05, 0.0125, 0.0175),
    "high": Thresholds(0.003, 0.03, 0.015, 0.0225),
}

# An offer for more than this share of an item's 24-hour traded volume would move the price
# or sit unfilled; quantities are capped there.
VOLUME_SHARE = 0.05

CAPITAL_MIN = 1000
SLOTS_MAX = 8


def loosest() -> Thresholds:
    """The union of all risk thresholds: rows outside it can never be recommended."""
    return Thresholds(
        min_expected_value=min(r.min_expected_value for r in RISKS.values()),
        min_fill_probability=min(r.min_fill_probability for r in RISKS.values()),
        min_offset_pct=min(r.min_offset_pct for r in RISKS.values()),
        max_offset_pct=max(r.max_offset_pct for r in RISKS.values()),
    )
