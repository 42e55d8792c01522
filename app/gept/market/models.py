"""Typed rows of the OSRS Wiki prices API. Every price and time may be missing (None).

These are the contract between the market client, the simulator and the collectors.
Item ids are ``int`` here; the API keys them by string and the parsers convert at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MAX_PRICE = 2_147_483_647
"""The highest price the Grand Exchange accepts (the int32 maximum)."""


@dataclass(frozen=True, slots=True)
class PriceBlock:
    """One item's averages over a 5-minute or 1-hour block (``/5m``, ``/1h``, ``/timeseries``)."""

    item_id: int
    timestamp: datetime
    avg_high_price: int | None
    high_price_volume: int
    avg_low_price: int | None
    low_price_volume: int


@dataclass(frozen=True, slots=True)
class LatestPrice:
    """One item's most recent instant buy (high) and instant sell (low) (``/latest``)."""

    item_id: int
    high: int | None
    high_time: datetime | None
    low: int | None
    low_time: datetime | None


@dataclass(frozen=True, slots=True)
class ItemMapping:
    """One item's static data (``/mapping``)."""

    item_id: int
    name: str
    examine: str | None
    members: bool
    value: int | None
    lowalch: int | None
    highalch: int | None
    limit: int | None
    icon: str | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """One row a parser refused (a value out of range), counted instead of failing the batch.

    Example: ``Rejection("/5m", 4151, "avgHighPrice", "-5", "below 0")``.
    """

    endpoint: str
    item_id: int | None
    field: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A whole ``/5m`` or ``/1h`` response: the block start and one row per item.

    ``rejected`` lists rows the parser refused (out-of-range values); they are not in ``rows``.
    """

    timestamp: datetime
    rows: tuple[PriceBlock, ...]
    rejected: tuple[Rejection, ...] = ()


@dataclass(frozen=True, slots=True)
class NewsItem:
    """One entry of the official OSRS news RSS feed."""

    guid: str
    title: str
    link: str | None
    description: str | None
    category: str | None
    pub_date: datetime | None
