"""A deterministic synthetic Grand Exchange: any block of any item, computed on demand.

Nothing is stored and nothing is iterated from the beginning of time. Every quantity is a
pure function of ``(seed, item, time)`` built from a 64-bit hash (splitmix64), so a block is
random-access and costs O(items), vectorised with numpy:

* the log-price is the item's base level plus *value noise* at several time scales
  (30 days down to 15 minutes): hashed knots per scale, smoothly interpolated. That looks
  like a bounded random walk, and block ``t`` never depends on block ``t - 1``;
* the spread, the volumes (Poisson-like rounding of a log-normal rate with a daily rhythm)
  and "dead" stretches (6-hour chunks in which an item does not trade at all: null prices,
  zero volume) are hashed per block or per chunk.

The item set covers what the real market has: prices from a few gp to 2,147,483,647 (a few
items pinned at the maximum), thin and enormous volumes, buy limits, missing alch values and
examine texts, and items that rarely or never trade.

Example:
    >>> from datetime import UTC, datetime
    >>> m = SyntheticMarket(items=20, seed=7)
    >>> snap = m.block(datetime(2026, 1, 1, tzinfo=UTC))
    >>> len(snap.rows), snap.rows[0].timestamp.isoformat()
    (20, '2026-01-01T00:00:00+00:00')
    >>> m.block(datetime(2026, 1, 1, tzinfo=UTC)) == snap
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from gept.core.errors import InvalidInput
from gept.market.models import MAX_PRICE, ItemMapping, LatestPrice, PriceBlock, Snapshot

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

# Value-noise scales (period in seconds) and their weight relative to an item's volatility.
_SCALES: tuple[tuple[int, float], ...] = (
    (30 * 86400, 2.0), (7 * 86400, 1.2), (86400, 1.0), (4 * 3600, 0.5), (3600, 0.3), (900, 0.15),
)
DEAD_CHUNK = 6 * 3600
"""Items stop trading in whole chunks of this many seconds."""
MAX_HISTORY_CELLS = 50_000_000
"""``history_arrays`` refuses requests larger than this (blocks x items): ~1.6 GB."""

_ADJ = ("Rune", "Adamant", "Mithril", "Dragon", "Bronze", "Iron", "Steel", "Black", "White",
        "Granite", "Crystal", "Ancient", "Blessed", "Gilded", "Toxic", "Infernal", "Twisted",
        "Arcane", "Saradomin", "Zamorak", "Guthix", "Armadyl", "Bandos", "Volcanic", "Frozen")
_NOUN = ("platebody", "scimitar", "bar", "ore", "logs", "rune", "arrow", "bolts", "shield",
         "helm", "boots", "gloves", "staff", "potion(4)", "seed", "herb", "fish", "pie",
         "amulet", "ring", "bones", "dart", "javelin", "cape", "crossbow")
_LIMITS = (8, 40, 70, 100, 125, 500, 1000, 2000, 5000, 6000, 10000, 11000, 13000, 18000,
           25000, 30000)

_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_K_ITEM = np.uint64(0xD1B54A32D192ED03)
_K_TIME = np.uint64(0x8CB92BA72F3D8DD7)
_K_SALT_INT = 0xA24BAED4963EE407
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _mix(x: U64) -> U64:
    """The splitmix64 finaliser: a bijective, well-avalanched 64-bit hash."""
    z = x + _C1
    z = (z ^ (z >> np.uint64(30))) * _C2
    z = (z ^ (z >> np.uint64(27))) * _C3
    out: U64 = z ^ (z >> np.uint64(31))
    return out


def _u01(seed: np.uint64, item_key: U64, knot: Any, salt: int) -> F64:
    """Uniform [0, 1) numbers for (item, time knot, purpose), broadcasting item x time."""
    knot_u = np.asarray(knot, dtype=np.int64).astype(np.uint64)
    salted = np.uint64((salt * _K_SALT_INT) & _MASK64)  # Python ints: no scalar overflow
    x = (item_key * _K_ITEM) ^ (knot_u * _K_TIME) ^ salted ^ seed
    h = _mix(_mix(x))
    out: F64 = (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    return out


def _epoch(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise InvalidInput("timestamps must be timezone-aware (UTC)", field="timestamp")
    return int(ts.timestamp())


def _aligned(ts: datetime, step: int) -> int:
    epoch = _epoch(ts)
    if step <= 0 or epoch % step:
        raise InvalidInput(f"timestamp {ts.isoformat()} is not a multiple of {step} s",
                           field="timestamp")
    return epoch


@dataclass(frozen=True, slots=True)
class MarketHistory:
    """Bulk history as arrays: row ``t`` is block ``timestamps[t]``, column ``i`` is
    ``item_ids[i]``. Missing prices are NaN (exact: every price < 2**53)."""

    timestamps: I64
    item_ids: I64
    avg_high_price: F64
    high_price_volume: I64
    avg_low_price: F64
    low_price_volume: I64

    def snapshots(self) -> Iterator[Snapshot]:
        """The same data as ``Snapshot`` objects, block by block."""
        ids = [int(i) for i in self.item_ids]
        for t, epoch in enumerate(self.timestamps):
            ts = datetime.fromtimestamp(int(epoch), UTC)
            yield Snapshot(ts, _rows(ts, ids, self.avg_high_price[t], self.high_price_volume[t],
                                     self.avg_low_price[t], self.low_price_volume[t]))


def _opt(value: float) -> int | None:
    return None if value != value else int(value)  # NaN != NaN


def _rows(ts: datetime, ids: list[int], high: F64, hvol: I64, low: F64, lvol: I64
          ) -> tuple[PriceBlock, ...]:
    return tuple(
        PriceBlock(item_id, ts, _opt(h), int(hv), _opt(lo), int(lv))
        for item_id, h, hv, lo, lv in zip(ids, high.tolist(), hvol.tolist(), low.tolist(),
                                          lvol.tolist(), strict=True)
    )


class SyntheticMarket:
    """A seeded synthetic market of ``items`` items.

    Args:
        items: number of items (1 to 100,000).
        seed: the same seed gives the same items and the same prices, byte for byte.
        start: when the market opens; blocks before it are empty (None: always open).

    Example:
        >>> m = SyntheticMarket(items=50, seed=1)
        >>> len(m.mapping()), m.mapping()[0].item_id
        (50, 7)
    """

    def __init__(self, items: int, seed: int, start: datetime | None = None) -> None:
        if not 1 <= items <= 100_000:
            raise InvalidInput("items must be between 1 and 100000", field="items")
        self.n_items = items
        self.seed = seed
        self.start_epoch = _epoch(start) if start is not None else None
        self._seed = _mix(np.array([seed & _MASK64], dtype=np.uint64))[0]
        rng = np.random.default_rng(seed)
        self.item_ids: I64 = (1 + np.cumsum(rng.integers(1, 12, items))).astype(np.int64)
        self._keys: U64 = self.item_ids.astype(np.uint64)
        log10p = rng.uniform(0.3, 8.7, items)
        self._pinned = np.zeros(items, dtype=bool)
        if items >= 10:  # a few items sit at the GE's maximum price, as real ones do
            pinned = rng.choice(items, size=max(1, items // 400), replace=False)
            self._pinned[pinned] = True
            log10p[pinned] = np.log10(MAX_PRICE) + 0.01
        self._log_base: F64 = log10p * np.log(10.0)
        self._sigma: F64 = np.where(self._pinned, 0.001, rng.uniform(0.02, 0.10, items))
        self._spread: F64 = rng.uniform(0.002, 0.04, items)
        log10v = np.clip(5.0 - 0.65 * log10p + rng.normal(0.0, 0.8, items), -1.5, 6.0)
        if items >= 20:  # a couple of rune-like items with enormous volume
            log10v[rng.choice(items, size=2, replace=False)] = rng.uniform(6.7, 7.4, 2)
        self._rate: F64 = 10.0 ** log10v  # expected trades per 5 minutes, per side
        illiquid = rng.random(items) < 0.15
        self._dead_prob: F64 = np.where(illiquid, rng.uniform(0.02, 0.5, items), 0.0)
        self._never: npt.NDArray[np.bool_] = (rng.random(items) < 0.01) & ~self._pinned
        self._mapping = self._make_mapping(rng, log10p)
        self._index = {int(i): k for k, i in enumerate(self.item_ids)}

    # -- static data ----------------------------------------------------------------------

    def _make_mapping(self, rng: np.random.Generator, log10p: F64) -> list[ItemMapping]:
        rows: list[ItemMapping] = []
        seen: set[str] = set()
        for k in range(self.n_items):
            item_id = int(self.item_ids[k])
            name = f"{_ADJ[int(rng.integers(len(_ADJ)))]} {_NOUN[int(rng.integers(len(_NOUN)))]}"
            if name in seen:
                name = f"{name} ({item_id})"
            seen.add(name)
            value = int(min(MAX_PRICE, max(1, round(10 ** log10p[k] * rng.uniform(0.2, 1.1)))))
            has_alch = rng.random() > 0.03
            has_limit = rng.random() > 0.05
            rows.append(ItemMapping(
                item_id=item_id,
                name=name,
                examine=None if rng.random() < 0.02 else f"A synthetic {name.lower()}.",
                members=bool(rng.random() < 0.6),
                value=value,
                lowalch=value * 2 // 5 if has_alch else None,
                highalch=value * 3 // 5 if has_alch else None,
                limit=int(rng.choice(_LIMITS)) if has_limit else None,
                icon=f"{name.replace(' ', '_')}.png",
            ))
        return rows

    def mapping(self) -> list[ItemMapping]:
        """Static data of every item, ordered by id (the ``/mapping`` rows)."""
        return list(self._mapping)

    def index_of(self, item_id: int) -> int:
        """The column of ``item_id`` in array results.

        Raises:
            InvalidInput: for an item this market does not have.
        """
        try:
            return self._index[item_id]
        except KeyError:
            raise InvalidInput(f"no item {item_id} in this market", field="id") from None

    # -- the price process ----------------------------------------------------------------

    def _log_mid(self, t: F64, idx: I64) -> F64:
        """Log mid price at times ``t`` (shape (T, 1) or (T, N)) for items ``idx``."""
        keys = self._keys[idx][None, :]
        out = np.broadcast_to(self._log_base[idx][None, :], np.broadcast_shapes(
            t.shape, (1, idx.size))).copy()
        sigma = self._sigma[idx][None, :]
        for salt, (period, weight) in enumerate(_SCALES):
            x = t / period
            knot = np.floor(x)
            frac = x - knot
            smooth = frac * frac * (3.0 - 2.0 * frac)
            a = _u01(self._seed, keys, knot, 100 + salt) * 2.0 - 1.0
            b = _u01(self._seed, keys, knot + 1, 100 + salt) * 2.0 - 1.0
            out += sigma * weight * (a + (b - a) * smooth)
        return out

    def _compute(self, epochs: I64, step: int, idx: I64) -> tuple[F64, I64, F64, I64]:
        """Averages and volumes for blocks starting at ``epochs`` (T,), items ``idx`` (N,)."""
        t = epochs.astype(np.float64)[:, None]
        knot = epochs[:, None] // 60  # per-block hash key, independent of the step
        keys = self._keys[idx][None, :]
        mid = np.exp(self._log_mid(t + step / 2.0, idx))
        half = self._spread[idx][None, :] / 2.0
        high = mid * (1.0 + half * (0.5 + _u01(self._seed, keys, knot, 1)))
        low = mid * (1.0 - half * (0.5 + _u01(self._seed, keys, knot, 2)))
        low = np.clip(np.floor(low), 1, MAX_PRICE)
        high = np.clip(np.maximum(np.ceil(high), low), 1, MAX_PRICE)
        # A daily rhythm (busier in the European/American evening) and log-normal noise.
        hour = (epochs[:, None] % 86400) / 86400.0
        rhythm = 1.0 + 0.5 * np.sin(2.0 * np.pi * (hour - 0.4))
        rate = self._rate[idx][None, :] * (step / 300.0) * rhythm
        volumes = []
        for salt in (3, 4):
            # Clipped so the heavy tail stays plausible (at most ~20x the usual rate).
            u = np.clip(_u01(self._seed, keys, knot, salt), 1e-4, 1 - 1e-4)
            noise = np.exp(0.6 * np.log(u / (1.0 - u)) * 0.55)
            jitter = _u01(self._seed, keys, knot, salt + 10)
            volumes.append(np.floor(rate * noise + jitter).astype(np.int64))
        hvol, lvol = volumes
        chunk = epochs[:, None] // DEAD_CHUNK
        dead = _u01(self._seed, keys, chunk, 5) < self._dead_prob[idx][None, :]
        dead = dead | self._never[idx][None, :]
        if self.start_epoch is not None:
            dead = dead | (epochs[:, None] < self.start_epoch)
        hvol = np.where(dead, 0, hvol)
        lvol = np.where(dead, 0, lvol)
        high = np.where(hvol > 0, high, np.nan)
        low = np.where(lvol > 0, low, np.nan)
        return high, hvol, low, lvol

    # -- public views ---------------------------------------------------------------------

    def block(self, ts: datetime, step: int = 300) -> Snapshot:
        """The block starting at ``ts`` (a multiple of ``step``) with one row per item.

        Items that do not trade in the block have null prices and zero volumes.

        Raises:
            InvalidInput: when ``ts`` is naive or not aligned to ``step``.
        """
        epoch = _aligned(ts, step)
        when = datetime.fromtimestamp(epoch, UTC)
        if self.start_epoch is not None and epoch < self.start_epoch:
            return Snapshot(when, ())  # before the market opened: no rows at all
        idx = np.arange(self.n_items, dtype=np.int64)
        high, hvol, low, lvol = self._compute(np.array([epoch], dtype=np.int64), step, idx)
        ids = [int(i) for i in self.item_ids]
        return Snapshot(when, _rows(when, ids, high[0], hvol[0], low[0], lvol[0]))

    def history_arrays(self, start: datetime, end: datetime, step: int = 300,
                       item_ids: list[int] | None = None) -> MarketHistory:
        """Blocks from ``start`` (inclusive) to ``end`` (exclusive) as numpy arrays.

        The fast path for bulk generation: 50 items x 30 days of 5-minute blocks is
        432,000 cells and takes a fraction of a second.

        Raises:
            InvalidInput: for unaligned bounds or a request above ``MAX_HISTORY_CELLS``.
        """
        first, stop = _aligned(start, step), _epoch(end)
        epochs = np.arange(first, stop, step, dtype=np.int64)
        idx = (np.arange(self.n_items, dtype=np.int64) if item_ids is None
               else np.array([self.index_of(i) for i in item_ids], dtype=np.int64))
        if epochs.size * idx.size > MAX_HISTORY_CELLS:
            raise InvalidInput(f"{epochs.size} blocks x {idx.size} items is too many; "
                               "ask in pieces", field="end")
        parts = [self._compute(epochs[i:i + 2048], step, idx)
                 for i in range(0, max(epochs.size, 1), 2048)] if epochs.size else []
        if not parts:
            empty_f = np.empty((0, idx.size))
            empty_i = np.empty((0, idx.size), dtype=np.int64)
            return MarketHistory(epochs, self.item_ids[idx], empty_f, empty_i, empty_f, empty_i)
        return MarketHistory(
            timestamps=epochs,
            item_ids=self.item_ids[idx].copy(),
            avg_high_price=np.concatenate([p[0] for p in parts]),
            high_price_volume=np.concatenate([p[1] for p in parts]),
            avg_low_price=np.concatenate([p[2] for p in parts]),
            low_price_volume=np.concatenate([p[3] for p in parts]),
        )

    def history(self, start: datetime, end: datetime, step: int = 300) -> Iterator[Snapshot]:
        """Snapshots from ``start`` (inclusive) to ``end`` (exclusive), computed in batches."""
        first, stop = _aligned(start, step), _epoch(end)
        batch = 288 * 300 // step or 1
        for lo in range(first, stop, batch * step):
            hi = min(stop, lo + batch * step)
            yield from self.history_arrays(datetime.fromtimestamp(lo, UTC),
                                           datetime.fromtimestamp(hi, UTC), step).snapshots()

    def timeseries(self, item_id: int, step: int, now: datetime, points: int = 365
                   ) -> list[PriceBlock]:
        """The last ``points`` complete blocks of one item before ``now`` (``/timeseries``)."""
        epoch = _epoch(now)
        last = epoch - epoch % step - step
        first = last - (points - 1) * step
        hist = self.history_arrays(datetime.fromtimestamp(first, UTC),
                                   datetime.fromtimestamp(last + step, UTC), step, [item_id])
        return [s.rows[0] for s in hist.snapshots()]

    def latest(self, ts: datetime) -> list[LatestPrice]:
        """Each item's most recent instant buy (high) and sell (low) at or before ``ts``.

        Liquid items traded seconds ago; thin ones hours ago; an item inside a dead stretch
        last traded before it began; items that never trade have all fields null.
        """
        now = _epoch(ts)
        idx = np.arange(self.n_items, dtype=np.int64)
        keys = self._keys[None, :]
        knot = np.array([[now // 60]], dtype=np.int64)
        chunk_start = now - now % DEAD_CHUNK
        dead_now = (_u01(self._seed, keys, np.array([[now // DEAD_CHUNK]]), 5)
                    < self._dead_prob[None, :])[0]
        result: list[list[Any]] = []
        for side, salt in (("high", 6), ("low", 7)):
            u = np.clip(_u01(self._seed, keys, knot, salt)[0], 1e-12, 1.0)
            gap = -np.log(u) * 300.0 / np.maximum(self._rate, 1e-3)
            gap = np.minimum(gap, 30 * 86400.0)
            when = np.where(dead_now, chunk_start - 1 - gap, now - gap).astype(np.int64)
            mid = np.exp(self._log_mid(when.astype(np.float64)[None, :], idx))[0]
            half = self._spread / 2.0
            raw = mid * (1.0 + half) if side == "high" else mid * (1.0 - half)
            price = np.clip(np.round(raw), 1, MAX_PRICE).astype(np.int64)
            result.append([price.tolist(), when.tolist()])
        (hp, ht), (lp, lt) = result
        rows: list[LatestPrice] = []
        for k, item_id in enumerate(self.item_ids.tolist()):
            if self._never[k] or (self.start_epoch is not None and now < self.start_epoch):
                rows.append(LatestPrice(item_id, None, None, None, None))
                continue
            rows.append(LatestPrice(item_id, hp[k], datetime.fromtimestamp(ht[k], UTC),
                                    lp[k], datetime.fromtimestamp(lt[k], UTC)))
        return rows
