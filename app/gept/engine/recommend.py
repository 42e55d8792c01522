"""Turning a batch's candidates into recommendations: ranking, sizing, profit after tax.

Everything here is pure and works on memory: the candidate set of the newest batch is loaded
once per batch (see :mod:`gept.engine.cache`), so a request costs no SQL at all.

Example:
    >>> c = Candidate(item_id=4151, item_name="Abyssal whip", hour_offset=4, offset_pct=0.0125,
    ...               fill_probability=0.4, expected_value=0.01, buy_price=1_500_000,
    ...               sell_price=1_560_000, confidence="high", model_id=1, buy_limit=70,
    ...               volume_24h=20_000)
    >>> recs = pick({("active", "low"): [c]}, style="active", risk="low", capital=10_000_000,
    ...             slots=2, exclude=frozenset())
    >>> recs[0].quantity, recs[0].profit_if_filled
    (3, 86400)
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gept.engine.policy import VOLUME_SHARE, Risk, Style
from gept.market.tax import profit_after_tax, tax_per_item, tax_total

REC_ID = re.compile(r"^rec-(\d{1,12})-(\d{1,9})-(\d{1,3})-(\d{1,4})$")
REC_ID_PATTERN = REC_ID.pattern


@dataclass(frozen=True, slots=True)
class Candidate:
    """One prediction row (an item at one window and one offset) with what sizing needs.

    ``score``, ``unit_tax``, ``unit_profit`` and ``key`` are derived once at construction:
    a candidate is built once per batch and read by thousands of requests.
    """

    item_id: int
    item_name: str
    hour_offset: int
    offset_pct: float
    fill_probability: float
    expected_value: float
    buy_price: int
    sell_price: int
    confidence: str
    model_id: int | None
    buy_limit: int | None
    volume_24h: int | None   # None when no volume data exists at all for the window
    score: float = field(init=False)
    """The ranking key: expected value times fill probability."""
    unit_tax: int = field(init=False)
    """GE tax on selling one item at ``sell_price``."""
    unit_profit: int = field(init=False)
    """Profit of one item bought and sold at the predicted prices, after GE tax."""
    key: str = field(init=False)
    """``item-window-offset``: the batch-independent part of a recommendation id."""
    max_quantity: int | None = field(init=False)
    """The capital-independent bound: buy limit and share of recent volume (None: neither)."""
    static: dict[str, object] = field(init=False, compare=False, hash=False, repr=False)
    """The part of a recommendation's JSON that does not depend on the request."""

    def __post_init__(self) -> None:
        tax = tax_per_item(self.sell_price)
        bounds = [b for b in (self.buy_limit, None if self.volume_24h is None
                              else int(self.volume_24h * VOLUME_SHARE)) if b is not None]
        setattr_ = object.__setattr__
        setattr_(self, "score", self.expected_value * self.fill_probability)
        setattr_(self, "unit_tax", tax)
        setattr_(self, "unit_profit", self.sell_price - tax - self.buy_price)
        setattr_(self, "key", f"{self.item_id}-{self.hour_offset}-"
                              f"{round(self.offset_pct * 10000)}")
        setattr_(self, "max_quantity", min(bounds) if bounds else None)
        setattr_(self, "static", {
            "item_id": self.item_id, "item_name": self.item_name,
            "buy_price": self.buy_price, "sell_price": self.sell_price,
            "window_hours": self.hour_offset, "offset_pct": self.offset_pct,
            "fill_probability": self.fill_probability, "expected_value": self.expected_value,
            "score": self.score, "confidence": self.confidence, "buy_limit": self.buy_limit,
            "volume_24h": self.volume_24h, "model_id": self.model_id})


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A sized candidate: what the user should place, and what it earns after tax."""

    id: str
    candidate: Candidate
    quantity: int
    batch_time: datetime

    @property
    def capital_required(self) -> int:
        """Gold needed to place the buy offer."""
        return self.quantity * self.candidate.buy_price

    @property
    def tax(self) -> int:
        """GE tax on selling the whole quantity."""
        return tax_total(self.candidate.sell_price, self.quantity)

    @property
    def profit_if_filled(self) -> int:
        """Profit when both offers fill, after tax."""
        c = self.candidate
        return profit_after_tax(c.buy_price, c.sell_price, self.quantity)

    def to_dict(self, batch_iso: str | None = None) -> dict[str, object]:
        """The JSON shape of one recommendation (see ``schemas.RecommendationOut``)."""
        c = self.candidate
        profit = self.profit_if_filled
        return {
            "id": self.id,
            **c.static,
            "quantity": self.quantity,
            "capital_required": self.capital_required,
            "tax": self.tax,
            "profit_if_filled": profit,
            "expected_profit": round(profit * c.fill_probability),
            "batch_time": batch_iso or iso(self.batch_time),
        }


def iso(when: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as every response writes times.

    Example:
        >>> iso(datetime(2026, 1, 1, tzinfo=UTC))
        '2026-01-01T00:00:00Z'
    """
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rec_id(batch_time: datetime, item_id: int, hour_offset: int, offset_pct: float) -> str:
    """A stable id naming one configuration of one batch: the same inputs, the same id.

    Example:
        >>> rec_id(datetime(2026, 1, 1, tzinfo=UTC), 4151, 4, 0.0125)
        'rec-1767225600-4151-4-125'
    """
    return f"rec-{int(batch_time.timestamp())}-{item_id}-{hour_offset}-{round(offset_pct * 10000)}"



def parse_rec_id(value: str) -> tuple[datetime, int, int, float] | None:
    """``(batch_time, item_id, hour_offset, offset_pct)`` of an id, or None if malformed."""
    match = REC_ID.match(value)
    if match is None:
        return None
    epoch, item, hours, offset_bp = (int(g) for g in match.groups())
    try:
        when = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return when, item, hours, offset_bp / 10000


def quantity(c: Candidate, capital_per_slot: int | None) -> int:
    """How many to buy: bounded by the slot's capital, the buy limit and recent volume."""
    if capital_per_slot is None:
        return max(0, c.max_quantity or 0)
    affordable = capital_per_slot // c.buy_price if c.buy_price > 0 else 0
    if c.max_quantity is None:
        return max(0, affordable)
    return max(0, min(affordable, c.max_quantity))


def pick(ranked: Mapping[tuple[Style, Risk], Sequence[Candidate]], *, style: Style, risk: Risk,
         capital: int, slots: int, exclude: frozenset[int],
         batch_time: datetime | None = None) -> list[Recommendation]:
    """The best ``slots`` items for this style and risk that the capital can buy.

    ``ranked`` holds, per (style, risk), one best configuration per item, best score first.
    Items that are excluded, unaffordable, or unprofitable after tax are skipped.
    """
    per_slot = capital // slots
    when = batch_time or datetime.fromtimestamp(0, UTC)
    prefix = f"rec-{int(when.timestamp())}-"
    out: list[Recommendation] = []
    for c in ranked.get((style, risk), ()):
        if c.buy_price > per_slot or c.unit_profit <= 0 or c.item_id in exclude:
            continue
        qty = quantity(c, per_slot)
        if qty <= 0:
            continue
        out.append(Recommendation(prefix + c.key, c, qty, when))
        if len(out) == slots:
            break
    return out


def rank(rows: Sequence[Candidate]) -> list[Candidate]:
    """Candidates ordered best first (score, then cheaper windows, then item id for ties)."""
    return sorted(rows, key=lambda c: (-c.score, c.hour_offset, c.item_id))


def margin_stream(by_offset: Mapping[float, Sequence[Candidate]], lo: float | None,
                  hi: float | None) -> Iterator[Candidate]:
    """Each item's best configuration among the offsets in ``[lo, hi]``, best first.

    ``by_offset`` holds, per offset, the best window per item ranked best first; a lazy
    k-way merge yields each item the first time it appears, which is its best.
    """
    lists = [group for offset, group in by_offset.items()
             if (lo is None or offset >= lo - 1e-9) and (hi is None or offset <= hi + 1e-9)]
    seen: set[int] = set()
    for c in heapq.merge(*lists, key=lambda c: (-c.score, c.hour_offset, c.item_id)):
        if c.item_id not in seen:
            seen.add(c.item_id)
            yield c


def pick_from(candidates: Iterable[Candidate], *, capital: int, slots: int | None,
              keep: Callable[[Candidate], bool] | None = None) -> list[tuple[Candidate, int]]:
    """Sized picks from ranked candidates: affordable, profitable after tax, kept by ``keep``.

    ``slots=None`` returns every viable candidate (each sized for the whole capital).
    """
    per_slot = capital // slots if slots else capital
    out: list[tuple[Candidate, int]] = []
    for c in candidates:
        if c.buy_price > per_slot or c.unit_profit <= 0 or (keep is not None and not keep(c)):
            continue
        qty = quantity(c, per_slot)
        if qty <= 0:
            continue
        out.append((c, qty))
        if slots is not None and len(out) == slots:
            break
    return out
