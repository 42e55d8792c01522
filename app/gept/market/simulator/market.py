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

The item set covers what the real market has (``docs/operations-reference.md``, "The OSRS
Wiki prices API"): prices from a few gp to 2,147,483,647 (a few items pinned at the maximum),
volumes up to about a million per 5 minutes, most items trading rarely (a 5-minute block
lists about a third of the catalogue, an hourly one about two thirds), and a few that never
trade. The catalogue (``/mapping``) is built by ``gept.market.simulator.catalogue``.

Example:
    >>> from datetime import UTC, datetime
    >>> m = SyntheticMarket(items=200, seed=7)
    >>> snap = m.block(datetime(2026, 1, 1, tzinfo=UTC))
    >>> 0 < len(snap.rows) < 200, snap.rows[0].timestamp.isoformat()
    (True, '2026-01-01T00:00:00+00:00')
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
from gept.market.simulator.catalogue import DEFAULT_ITEMS, catalogue
from gept.market.simulator.moves import MoveBook, PriceMove

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
TRADES_LOG10_MEAN, TRADES_LOG10_SD = -1.0, 1.2
"""log10 of an item's trades per 5 minutes and side: the coverage of blocks follows from it."""
TIMESERIES_POINTS, TIMESERIES_LOOKBACK = 300, 365
"""``/timeseries`` answers the last 300 traded blocks among the last 365."""
UNLISTED_SINCE = 1_650_000_000
"""Trades of the ids /latest has and /mapping lacks are from the two years after Apr 2022."""

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
    ``item_ids[i]``. Missing prices are NaN (exact: every price < 2**53).
    """

    timestamps: I64
    item_ids: I64
    avg_high_price: F64
    high_price_volume: I64
    avg_low_price: F64
    low_price_volume: I64

    def snapshots(self) -> Iterator[Snapshot]:
        """The same data as ``Snapshot`` objects, block by block (traded items only)."""
        ids = [int(i) for i in self.item_ids]
        for t, epoch in enumerate(self.timestamps):
            ts = datetime.fromtimestamp(int(epoch), UTC)
            yield Snapshot(ts, _rows(ts, ids, self.avg_high_price[t], self.high_price_volume[t],
                                     self.avg_low_price[t], self.low_price_volume[t]))


def _opt(value: float) -> int | None:
    return None if value != value else int(value)  # NaN != NaN


def _rows(ts: datetime, ids: list[int], high: F64, hvol: I64, low: F64, lvol: I64
          ) -> tuple[PriceBlock, ...]:
    """The traded items of one block (the API leaves the others out)."""
    return tuple(
        PriceBlock(item_id, ts, _opt(h), int(hv), _opt(lo), int(lv))
        for item_id, h, hv, lo, lv in zip(ids, high.tolist(), hvol.tolist(), low.tolist(),
                                          lvol.tolist(), strict=True)
        if hv or lv
    )


class SyntheticMarket:
    """A seeded synthetic market of ``items`` items.

    Args:
        items: number of items (1 to 100,000); ``DEFAULT_ITEMS`` (4,300) is the real size.
        seed: the same seed gives the same items and the same prices, byte for byte.
        start: when the market opens; blocks before it are empty (None: always open).

    Example:
        >>> m = SyntheticMarket(items=50, seed=1)
        >>> len(m.mapping()), len(m.item_ids)
        (50, 50)
    """

    def __init__(self, items: int = DEFAULT_ITEMS, seed: int = 0,
                 start: datetime | None = None) -> None:
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
            pinned = rng.choice(items, size=max(1, items // 1000), replace=False)
            self._pinned[pinned] = True
            log10p[pinned] = np.log10(MAX_PRICE) + 0.01
        self._log_base: F64 = log10p * np.log(10.0)
        self._sigma: F64 = np.where(self._pinned, 0.001, rng.uniform(0.02, 0.10, items))
        self._spread: F64 = rng.uniform(0.002, 0.04, items)
        # Trades per 5 minutes and per side: most items trade rarely (a real 5-minute block
        # lists 35-38 % of the catalogue, an hourly one 62-75 %), cheap ones more often.
        log10_trades = np.clip(rng.normal(TRADES_LOG10_MEAN, TRADES_LOG10_SD, items)
                               - 0.12 * (log10p - 4.5), -4.5, 1.3)
        # Items per trade: thousands for runes and arrows, one for a party hat.
        log10_lot = np.clip(3.3 - 0.6 * log10p + rng.normal(0.0, 0.4, items), 0.0, 3.9)
        if items >= 20:  # a couple of rune-like items with the market's largest volume
            big = rng.choice(items, size=2, replace=False)
            log10_trades[big], log10_lot[big] = 1.45, 3.8
        # Items at the maximum price trade steadily (real /1h blocks average up to 2.1e9).
        log10_trades = np.where(self._pinned, np.maximum(log10_trades, 0.3), log10_trades)
        self._trades: F64 = 10.0 ** log10_trades
        self._lot: F64 = 10.0 ** log10_lot
        illiquid = rng.random(items) < 0.15
        self._dead_prob: F64 = np.where(illiquid, rng.uniform(0.02, 0.5, items), 0.0)
        self._never: npt.NDArray[np.bool_] = (rng.random(items) < 0.03) & ~self._pinned
        side = rng.random(items)  # one side never traded (0.5 %), one side years stale (2 %)
        self._one_sided = np.where(side < 0.0025, 1, np.where(side < 0.005, 2, 0))
        self._ancient: F64 = np.where((side >= 0.005) & (side < 0.025),
                                      rng.uniform(30, 1450, items) * 86400.0, 0.0)
        self._same_time = rng.random(items) < 0.01  # one trade matched both sides
        self._mapping = catalogue(rng, self.item_ids.tolist(), log10p.tolist())
        self._index = {int(i): k for k, i in enumerate(self.item_ids)}
        self._unlisted = self._make_unlisted(rng)
        self.moves = MoveBook()
        """Scripted price moves (``gept.market.simulator.moves``); none by default."""

    # -- static data ----------------------------------------------------------------------

    def _make_unlisted(self, rng: np.random.Generator) -> list[LatestPrice]:
        """Ids the real /latest has and /mapping does not (16 of ~4,300): old, odd trades."""
        listed = set(self._index)
        top = int(self.item_ids[-1]) if self.n_items else 0
        rows: list[LatestPrice] = []
        while len(rows) < self.n_items // 270:
            item_id = int(rng.integers(1, top + 50))
            if item_id in listed:
                continue
            listed.add(item_id)
            price = int(10 ** rng.uniform(1, 8))
            when = datetime.fromtimestamp(int(UNLISTED_SINCE + rng.uniform(0, 6e7)), UTC)
            one = rng.random() < 0.5
            rows.append(LatestPrice(item_id, price if one else None, when if one else None,
                                    None if one else price, None if one else when))
        return sorted(rows, key=lambda r: r.item_id)

    def mapping(self) -> list[ItemMapping]:
        """Static data of every item, sorted by name (the ``/mapping`` rows)."""
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
        moves = self.moves.moves
        if moves:  # none by default: the seeded market pays nothing for this
            self._apply_moves(out, t, idx, moves)
        return out

    def _apply_moves(self, out: F64, t: F64, idx: I64, moves: tuple[PriceMove, ...]) -> None:
        """Add each scripted move's log factor where its item and interval match."""
        times = np.broadcast_to(t, out.shape)
        for move in moves:
            col = self._index.get(move.item_id)
            if col is None:
                continue  # an id this market lacks moves nothing
            cols = np.flatnonzero(idx == col)
            if not cols.size:
                continue
            held = times[:, cols] >= move.since
            if move.until is not None:
                held &= times[:, cols] < move.until
            out[:, cols] += np.where(held, move.log_factor, 0.0)

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
        # A daily rhythm (busier in the European/American evening) that a day-long block
        # averages out, and log-normal-like noise that narrows as blocks get longer.
        hour = (epochs[:, None] % 86400) / 86400.0
        rhythm = (1.0 + 0.2 * np.sin(2.0 * np.pi * (hour - 0.4)) if step < 86400
                  else np.ones_like(hour))
        blocks = step / 300.0
        expected = self._trades[idx][None, :] * blocks * rhythm
        spread_noise = 0.3 / blocks ** 0.25
        volumes = []
        for salt in (3, 4):
            u = np.clip(_u01(self._seed, keys, knot, salt), 0.01, 0.99)
            noise = np.exp(spread_noise * np.log(u / (1.0 - u)))
            jitter = _u01(self._seed, keys, knot, salt + 10)
            trades = np.floor(expected * noise + jitter)
            size = self._lot[idx][None, :] * (0.5 + _u01(self._seed, keys, knot, salt + 20))
            volumes.append(np.where(trades > 0, np.maximum(trades, np.round(trades * size)),
                                    0).astype(np.int64))
        hvol, lvol = volumes
        chunk = epochs[:, None] // DEAD_CHUNK
        dead = _u01(self._seed, keys, chunk, 5) < self._dead_prob[idx][None, :]
        dead = dead | self._never[idx][None, :]
        if self.start_epoch is not None:
            dead = dead | (epochs[:, None] < self.start_epoch)
        hvol = np.where(dead | (self._one_sided[idx][None, :] == 1), 0, hvol)
        lvol = np.where(dead | (self._one_sided[idx][None, :] == 2), 0, lvol)
        high = np.where(hvol > 0, high, np.nan)
        low = np.where(lvol > 0, low, np.nan)
        return high, hvol, low, lvol

    # -- public views ---------------------------------------------------------------------

    def block(self, ts: datetime, step: int = 300) -> Snapshot:
        """The block starting at ``ts`` (a multiple of ``step``): one row per traded item.

        Items that did not trade in the block are left out, as the real API leaves them out;
        an item that traded on one side only has a null average and a zero volume on the
        other.

        Raises:
            InvalidInput: when ``ts`` is naive or not aligned to ``step``.
        """
        return self.window(_aligned(ts, step), step)

    def window(self, epoch: int, seconds: int) -> Snapshot:
        """Trades in ``[epoch, epoch + seconds)`` whatever the alignment (``/24h``)."""
        when = datetime.fromtimestamp(epoch, UTC)
        if self.start_epoch is not None and epoch < self.start_epoch:
            return Snapshot(when, ())  # before the market opened: no rows at all
        idx = np.arange(self.n_items, dtype=np.int64)
        high, hvol, low, lvol = self._compute(np.array([epoch], dtype=np.int64), seconds, idx)
        ids = [int(i) for i in self.item_ids]
        return Snapshot(when, _rows(when, ids, high[0], hvol[0], low[0], lvol[0]))

    def volumes(self, now: datetime) -> dict[int, int]:
        """Items traded over the day before ``now`` (``/volumes``), both sides together."""
        epoch = _epoch(now)
        day = self.window(epoch - epoch % 300 - 86400, 86400)
        return {r.item_id: r.high_price_volume + r.low_price_volume for r in day.rows}

    def history_arrays(self, start: datetime, end: datetime, step: int = 300,
                       item_ids: list[int] | None = None) -> MarketHistory:
        """Blocks from ``start`` (inclusive) to ``end`` (exclusive) as numpy arrays.

        The fast path for bulk generation: 50 items x 30 days of 5-minute blocks is
        432,000 cells and takes a fraction of a second. Unlike ``block``, every item has a
        column in every row (NaN prices and zero volumes where it did not trade).

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

    def timeseries(self, item_id: int, step: int, now: datetime,
                   points: int = TIMESERIES_POINTS) -> list[PriceBlock]:
        """The last ``points`` traded blocks of one item before ``now`` (``/timeseries``).

        Blocks in which the item did not trade are skipped, so the series has gaps, as the
        real one does; it looks back at most ``TIMESERIES_LOOKBACK`` blocks.
        """
        epoch = _epoch(now)
        last = epoch - epoch % step - step
        first = last - (TIMESERIES_LOOKBACK - 1) * step
        hist = self.history_arrays(datetime.fromtimestamp(first, UTC),
                                   datetime.fromtimestamp(last + step, UTC), step, [item_id])
        rows = [s.rows[0] for s in hist.snapshots() if s.rows]
        return rows[-points:]

    def latest(self, ts: datetime) -> list[LatestPrice]:
        """Each item's most recent instant buy (high) and sell (low) at or before ``ts``.

        Liquid items traded seconds ago; thin ones hours or days ago; a few have one side
        years old or never traded (null price, null time); items that never traded are left
        out, and a few ids that ``/mapping`` does not list are in. Each trade's price carries
        its own noise, so the latest low is above the latest high for about a sixth of items.
        """
        now = _epoch(ts)
        if self.start_epoch is not None and now < self.start_epoch:
            return []
        idx = np.arange(self.n_items, dtype=np.int64)
        keys = self._keys[None, :]
        knot = np.array([[now // 60]], dtype=np.int64)
        chunk_start = now - now % DEAD_CHUNK
        dead_now = (_u01(self._seed, keys, np.array([[now // DEAD_CHUNK]]), 5)
                    < self._dead_prob[None, :])[0]
        result: list[list[Any]] = []
        for side, salt in (("high", 6), ("low", 7)):
            u = np.clip(_u01(self._seed, keys, knot, salt)[0], 1e-12, 1.0)
            gap = -np.log(u) * 330.0 / np.maximum(self._trades, 1e-4)
            gap = np.minimum(gap, 120 * 86400.0)
            if side == "high":  # the stale side of the few years-old entries
                gap = np.maximum(gap, self._ancient)
            when = np.where(dead_now, chunk_start - 1 - gap, now - gap).astype(np.int64)
            mid = np.exp(self._log_mid(when.astype(np.float64)[None, :], idx))[0]
            z = np.log(np.clip(_u01(self._seed, keys, knot, salt + 10)[0], 1e-6, 1 - 1e-6))
            jitter = np.exp(self._spread * 0.4 * z / 1.7)  # per-trade noise, ~spread wide
            sign = 1.0 if side == "high" else -1.0
            raw = mid * (1.0 + sign * self._spread / 3.0) * jitter
            price = np.clip(np.round(raw), 1, MAX_PRICE).astype(np.int64)
            price = np.where(self._pinned, MAX_PRICE, price)
            result.append([price.tolist(), when.tolist()])
        (hp, ht), (lp, lt) = result
        lt = np.where(self._same_time & (self._ancient == 0), ht, lt).tolist()
        rows: list[LatestPrice] = []
        for k, item_id in enumerate(self.item_ids.tolist()):
            if self._never[k]:
                continue
            high_side = self._one_sided[k] != 1
            low_side = self._one_sided[k] != 2
            rows.append(LatestPrice(
                item_id, hp[k] if high_side else None,
                datetime.fromtimestamp(ht[k], UTC) if high_side else None,
                lp[k] if low_side else None,
                datetime.fromtimestamp(lt[k], UTC) if low_side else None))
        rows.extend(self._unlisted)
        return sorted(rows, key=lambda r: r.item_id)
