"""The engine's view of the database: reachability, the newest batch and its candidates.

One background task per worker checks ``max(time)`` of ``prediction_batches`` about once a
second. When the newest batch changes it loads that batch's candidate set (one statement;
the per-item ranking runs inside PostgreSQL) into memory, so recommendation requests are
answered from memory without touching the database. The same check records whether the
database is reachable: while it is not, data routes answer 503 instead of serving from
memory, and the engine recovers by itself when it returns.

Example:
    >>> state = EngineState(pool, stale_after_seconds=600)   # doctest: +SKIP
    >>> await state.refresh()                                 # doctest: +SKIP
    >>> state.snapshot.batch_time                             # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gept.engine import repository
from gept.engine.background import stopped
from gept.engine.contract import (
    UNKNOWN_ITEM,
    ItemInfo,
    category_of,
    icon_url,
    trend_of,
    web_static,
)
from gept.engine.policy import Risk, Style
from gept.engine.recommend import Candidate, iso, rank

log = logging.getLogger(__name__)

DB_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout,
                                              psycopg.errors.AdminShutdown)


@dataclass(frozen=True)
class Snapshot:
    """One batch's candidates in memory, ranked per (style, risk) and per offset."""

    batch_time: datetime
    ranked: dict[tuple[Style, Risk], list[Candidate]]
    by_id: dict[str, Candidate]
    loaded_at: float = field(default_factory=time.time)
    batch_iso: str = ""
    """The batch time as every response writes it (derived once)."""
    by_offset: dict[tuple[Style, Risk], dict[float, list[Candidate]]] = field(
        default_factory=dict)
    """Per (style, risk), per offset: the best window per item, best first (for margins)."""
    by_item: dict[tuple[Style, Risk], dict[int, Candidate]] = field(default_factory=dict)
    """Per (style, risk): each item's best configuration (the first of ``ranked``)."""
    browse: list[Candidate] = field(default_factory=list)
    """Each item's best configuration over every style and risk, best first (opportunities)."""
    info: dict[int, ItemInfo] = field(default_factory=dict)
    """Icon, category and trend per item."""
    beta_model_ids: frozenset[int] = frozenset()
    """Registry models marked beta (``metrics.beta = true``) that predicted in this batch."""
    web: dict[str, dict[str, object]] = field(default_factory=dict)
    """The clients' request-independent fields per candidate key, filled on first use."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_iso", iso(self.batch_time))

    def web_static(self, cand: Candidate) -> dict[str, object]:
        """The candidate's request-independent W1/W2 fields (built once per batch)."""
        found = self.web.get(cand.key)
        if found is None:
            found = self.web[cand.key] = web_static(cand, self.item_info(cand.item_id))
        return found

    def item_info(self, item_id: int) -> ItemInfo:
        """The item's icon, category and trend (defaults when the item is unknown)."""
        return self.info.get(item_id, UNKNOWN_ITEM)


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old the served batch is; ``stale`` beyond the configured threshold."""

    batch_time: datetime | None
    age_seconds: float | None
    stale: bool
    stale_after_seconds: int

    def to_dict(self, batch_iso: str | None = None) -> dict[str, object]:
        """JSON shape (see ``schemas.FreshnessOut``); ``batch_iso`` if already formatted."""
        when = batch_iso or (None if self.batch_time is None else iso(self.batch_time))
        return {"batch_time": when,
                "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
                "stale": self.stale, "stale_after_seconds": self.stale_after_seconds}


def build_snapshot(batch_time: datetime, rows: list[tuple[str, str, Candidate]],
                   info: dict[int, ItemInfo] | None = None,
                   beta_model_ids: frozenset[int] = frozenset()) -> Snapshot:
    """Group and rank the loaded candidates; index them by recommendation id and item.

    ``rows`` may hold several offsets per (style, risk, item): each offset keeps its best
    window, and the item's best over all offsets is what ``ranked`` serves.
    """
    per_offset: dict[tuple[Style, Risk], dict[float, list[Candidate]]] = defaultdict(
        lambda: defaultdict(list))
    best: dict[tuple[Style, Risk], dict[int, Candidate]] = defaultdict(dict)
    overall: dict[int, Candidate] = {}
    by_id: dict[str, Candidate] = {}
    shared: dict[str, Candidate] = {}
    prefix = f"rec-{int(batch_time.timestamp())}-"
    for style, risk, cand in rows:
        cand = shared.setdefault(cand.key, cand)  # one object per configuration
        key = (cast(Style, style), cast(Risk, risk))
        per_offset[key][cand.offset_pct].append(cand)
        mine = best[key]
        cur = mine.get(cand.item_id)
        if cur is None or _better(cand, cur):
            mine[cand.item_id] = cand
        top = overall.get(cand.item_id)
        if top is None or _better(cand, top):
            overall[cand.item_id] = cand
        by_id[prefix + cand.key] = cand
    ranked = {key: rank(list(items.values())) for key, items in best.items()}
    by_offset = {key: {o: rank(group) for o, group in offsets.items()}
                 for key, offsets in per_offset.items()}
    return Snapshot(batch_time, ranked, by_id, by_offset=by_offset, by_item=dict(best),
                    browse=rank(list(overall.values())), info=info or {},
                    beta_model_ids=beta_model_ids)


def _better(a: Candidate, b: Candidate) -> bool:
    return (-a.score, a.hour_offset, a.offset_pct) < (-b.score, b.hour_offset, b.offset_pct)


def _item_info(facts: repository.ItemFacts) -> dict[int, ItemInfo]:
    out: dict[int, ItemInfo] = {}
    for item_id, name in facts.names.items():
        recent, day = facts.mids.get(item_id, (None, None))
        out[item_id] = ItemInfo(icon_url(facts.icons.get(item_id)),
                                category_of(name, members=facts.members.get(item_id)),
                                trend_of(recent, day))
    return out


def _snapshot_from_rows(batch_time: datetime, rows: list[repository.CandidateRow],
                        facts: repository.ItemFacts, beta: frozenset[int]) -> Snapshot:
    return build_snapshot(batch_time, [repository.to_candidate(r, facts) for r in rows],
                          _item_info(facts), beta)


class EngineState:
    """Shared by every request of one worker: the pool, reachability, the snapshot."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, stale_after_seconds: int,
                 refresh_interval: float = 1.0,
                 read_pool: AsyncConnectionPool[Any] | None = None,
                 outage_grace_seconds: float = 0.0) -> None:
        self.pool = pool
        # Where the predictions snapshot is read from: a standby when configured
        # (GEPT_DATABASE_READ_URL), else the pool every other statement uses.
        self.read_pool = read_pool or pool
        self.stale_after_seconds = stale_after_seconds
        self.refresh_interval = refresh_interval
        self.started_at = time.monotonic()
        self.snapshot: Snapshot | None = None
        self.newest_seen: datetime | None = None
        self.db_up = False
        self.db_error: str | None = None
        self.db_latency_ms: float | None = None
        self.checked_at = 0.0
        self.outage_grace_seconds = outage_grace_seconds
        self.reached_at: float | None = None  # monotonic time of the last good read
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def uptime_seconds(self) -> float:
        """Seconds since this worker started."""
        return time.monotonic() - self.started_at

    def freshness(self, batch_time: datetime | None = None) -> Freshness:
        """Freshness of ``batch_time`` (default: the batch being served)."""
        if batch_time is None:
            batch_time = self.snapshot.batch_time if self.snapshot else self.newest_seen
        if batch_time is None:
            return Freshness(None, None, True, self.stale_after_seconds)
        age = max(0.0, time.time() - batch_time.timestamp())
        return Freshness(batch_time, age, age > self.stale_after_seconds,
                         self.stale_after_seconds)

    @property
    def can_serve(self) -> bool:
        """True while the batch in memory may be served: the database answered the last
        refresh, or answered within ``outage_grace_seconds``.

        Why a grace: during a switchover no host accepts connections for a second or two;
        the batch in memory is the one the database would return, and the freshness headers
        still say its age. A real outage gives 503 once the grace is over. ``db_up`` (health,
        readiness, the metric) always says the truth at once.
        """
        if self.db_up:
            return True
        return (self.snapshot is not None and self.reached_at is not None
                and time.monotonic() - self.reached_at <= self.outage_grace_seconds)

    def mark_down(self, exc: BaseException) -> None:
        """Record that a statement failed because the database is unreachable."""
        if self.db_up:
            log.warning("database unreachable: %s", str(exc).strip() or type(exc).__name__)
        self.db_up = False
        self.db_error = str(exc).strip() or type(exc).__name__

    async def refresh(self) -> None:
        """Check reachability and the newest batch; load it when it changed.

        Never raises for an unreachable database; that is recorded in ``db_up``.
        """
        async with self._lock:
            t0 = time.perf_counter()
            try:
                async with self.read_pool.connection() as conn:
                    newest = await repository.newest_batch(conn)
                    self.db_latency_ms = (time.perf_counter() - t0) * 1000
                    if not self.db_up:
                        log.info("database reachable")
                    self.db_up, self.db_error = True, None
                    self.reached_at = time.monotonic()
                    self.newest_seen = newest
                    if newest is not None and (self.snapshot is None
                                               or self.snapshot.batch_time != newest):
                        t1 = time.perf_counter()
                        rows, facts = await repository.candidate_rows(conn, newest)
                        beta = await repository.beta_models(conn, newest)
                        # Tens of thousands of objects: built in a thread so the event loop
                        # keeps answering (it gets the GIL every few ms) instead of stalling.
                        self.snapshot = await asyncio.to_thread(
                            _snapshot_from_rows, newest.astimezone(UTC), rows, facts, beta)
                        log.info("loaded batch %s: %d candidates in %.0f ms",
                                 newest.isoformat(), len(rows),
                                 (time.perf_counter() - t1) * 1000)
                    elif newest is not None and self.snapshot is not None:
                        # A model marked (or unmarked) beta takes effect now, not with the
                        # next batch: one small query per refresh.
                        beta = await repository.beta_models(conn, newest)
                        if beta != self.snapshot.beta_model_ids:
                            self.snapshot = replace(self.snapshot, beta_model_ids=beta)
                            log.info("beta models of batch %s: %s", newest.isoformat(),
                                     sorted(beta) or "none")
            except DB_ERRORS as exc:
                self.mark_down(exc)
            finally:
                self.checked_at = time.monotonic()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except Exception:  # a bug must not kill the refresher; it is logged and retried
                log.exception("refreshing the predictions cache failed")

    async def start(self) -> None:
        """First refresh now (so a started engine can serve at once), then every interval."""
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="gept-engine-refresh")

    async def stop(self) -> None:
        """Stop the background refresh."""
        await stopped(self._task)
        self._task = None
