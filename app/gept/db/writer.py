"""Idempotent bulk writers for market data: COPY into a staging table, then one INSERT.

Every writer follows the same recipe, in ONE transaction so a batch is never half-written:

1. rows are checked in Python (ids, prices and volumes in range); a bad row is left out and
   counted in ``WriteResult.rejected`` — one bad item never costs the batch;
2. the partitions covering the batch's time range are ensured (before the transaction, so a
   rolled-back write never leaves a cached-but-missing partition behind);
3. rows are streamed with ``COPY`` into a temporary table (``ON COMMIT DROP``);
4. ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` moves them into the real table, so
   re-running the same block writes nothing (``WriteResult.written`` counts new rows only).

COPY + one set-based INSERT is several times faster than ``executemany`` and keeps the
conflict handling inside PostgreSQL.

Give the writers a connection that is not inside a transaction (autocommit, or idle): each
write then commits on its own. Inside a caller's open transaction the rows commit (or roll
back) with it, and a partition created on the way stays locked until then.

Example:
    >>> with connect() as conn:                                        # doctest: +SKIP
    ...     result = write_price_blocks(conn, "price_data_5min", snapshot.rows)
    >>> result.written, result.duplicates, result.rejected             # doctest: +SKIP
    (4000, 0, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import psycopg
from psycopg import sql

from gept.db import partitions
from gept.market.models import MAX_PRICE, ItemMapping, LatestPrice, NewsItem, PriceBlock

BeforeCommit = Callable[[psycopg.Connection[Any], "WriteResult"], None]
"""Work done in the writer's transaction once the rows are in (records, gaps)."""
PriceTable = Literal["price_data_5min", "prices_1h"]
PRICE_TABLES: tuple[str, ...] = ("price_data_5min", "prices_1h")

MAX_INT4 = 2_147_483_647
MAX_INT8 = 9_223_372_036_854_775_807
WIKI_PAGE = "https://oldschool.runescape.wiki/w/"

# Column lists: the staging table and the INSERT use the same order.
_PRICE_COLS = ("item_id", "timestamp", "avg_high_price", "high_price_volume",
               "avg_low_price", "low_price_volume")
_PRICE_TYPES = ("int4", "timestamptz", "int8", "int8", "int8", "int8")
_LATEST_COLS = ("item_id", "timestamp", "high", "high_time", "low", "low_time")
_ITEM_COLS = ("item_id", "name", "examine", "members", "tradeable", "lowalch", "highalch",
              "cost", "buy_limit", "icon", "wiki_url")
_NEWS_COLS = ("guid", "title", "link", "description", "category", "pub_date")
# Truncation limits (production's collector enforced these; a huge field is not news).
_NEWS_LIMITS = {"guid": 255, "title": 500, "link": 2000, "description": 10_000, "category": 100}


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write did.

    Attributes:
        table: the target table.
        offered: rows handed to the writer.
        written: rows that were new and are now stored.
        rejected: rows refused by validation (out of range, missing key).
    """

    table: str
    offered: int
    written: int
    rejected: int = 0

    @property
    def duplicates(self) -> int:
        """Valid rows that were already stored (re-runs of the same block)."""
        return self.offered - self.rejected - self.written

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"table": self.table, "offered": self.offered, "written": self.written,
                "duplicates": self.duplicates, "rejected": self.rejected}


# -- validation ----------------------------------------------------------------------------

def _price_ok(value: int | None) -> bool:
    return value is None or 0 <= value <= MAX_PRICE


def valid_block(row: PriceBlock) -> bool:
    """True when a price row fits the schema (the parser checks most of this already)."""
    return (0 <= row.item_id <= MAX_INT4 and _price_ok(row.avg_high_price)
            and _price_ok(row.avg_low_price) and 0 <= row.high_price_volume <= MAX_INT8
            and 0 <= row.low_price_volume <= MAX_INT8 and row.timestamp.tzinfo is not None)


def valid_latest(row: LatestPrice) -> bool:
    """True when a /latest row fits the schema."""
    return 0 <= row.item_id <= MAX_INT4 and _price_ok(row.high) and _price_ok(row.low)


def valid_item(row: ItemMapping) -> bool:
    """True when a /mapping row fits the schema (an item needs a name)."""
    return (0 <= row.item_id <= MAX_INT4 and bool(row.name.strip())
            and all(_price_ok(v) for v in (row.value, row.lowalch, row.highalch))
            and (row.limit is None or 0 <= row.limit <= MAX_INT4))


def wiki_url(name: str) -> str:
    """The OSRS Wiki page of an item, as production stored it.

    Example:
        >>> wiki_url("Abyssal whip")
        'https://oldschool.runescape.wiki/w/Abyssal_whip'
    """
    return WIKI_PAGE + quote(name.strip().replace(" ", "_"), safe="_()'!,-.~")


def _clip(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[:limit]


# -- the staging machinery -------------------------------------------------------------------

def _copy(conn: psycopg.Connection[Any], table: str, cols: Sequence[str],
          types: Sequence[str] | None, rows: Iterable[Sequence[object]]) -> int:
    """COPY rows into ``table`` (binary when the column types are given); return the count."""
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    fmt = sql.SQL(" (FORMAT BINARY)") if types else sql.SQL("")
    n = 0
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {t} ({cols}) FROM STDIN{fmt}").format(
            t=sql.Identifier(table), cols=col_ids, fmt=fmt)) as copy:
        if types:
            copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _stage_and_insert(conn: psycopg.Connection[Any], table: str, cols: Sequence[str],
                      rows: Iterable[Sequence[object]], insert_tail: sql.Composable,
                      select: sql.Composable | None = None,
                      types: Sequence[str] | None = None) -> int:
    """COPY ``rows`` into a temp table shaped like ``table`` and INSERT them; return rowcount.

    Must run inside a transaction (the temp table is dropped on commit).
    """
    stage_name = f"_stage_{table}"
    stage = sql.Identifier(stage_name)
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    # Inside a caller's transaction an earlier call's table is still there (ON COMMIT DROP
    # waits for the outer commit): start from a fresh one.
    conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{stage}").format(stage=stage))
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE {stage} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP").format(
        stage=stage, table=sql.Identifier(table)))
    _copy(conn, stage_name, cols, types, rows)
    with conn.cursor() as cur:
        query = sql.SQL("INSERT INTO {table} ({cols}) {select} {tail}").format(
            table=sql.Identifier(table), cols=col_ids,
            select=select or sql.SQL("SELECT {cols} FROM {stage}").format(cols=col_ids,
                                                                          stage=stage),
            tail=insert_tail)
        cur.execute(query)
        return max(0, cur.rowcount)


def _done(conn: psycopg.Connection[Any], hook: BeforeCommit | None, table: str, offered: int,
          written: int, rejected: int) -> WriteResult:
    """The write's result, after the caller's hook ran in the same transaction (e.g. its run
    record is committed with the rows or not at all).
    """
    result = WriteResult(table, offered, written, rejected)
    if hook is not None:
        hook(conn, result)
    return result


def _counted(rows: Iterable[Any], ok: Callable[[Any], bool],
             tally: list[int]) -> Iterator[Any]:
    """Yield valid rows; count offered ([0]) and rejected ([1]) in ``tally``."""
    for row in rows:
        tally[0] += 1
        if ok(row):
            yield row
        else:
            tally[1] += 1


def _transaction(conn: psycopg.Connection[Any]) -> Any:
    return conn.transaction()


# -- writers -------------------------------------------------------------------------------------

def write_price_blocks(conn: psycopg.Connection[Any], table: PriceTable | str,
                       rows: Sequence[PriceBlock], *,
                       before_commit: BeforeCommit | None = None,
                       fast_path: bool = True) -> WriteResult:
    """Write 5-minute or 1-hour blocks idempotently (``ON CONFLICT (item_id, timestamp)``).

    When no row of the batch's time range is stored yet (a new block, a backfilled gap), the
    rows are COPYed straight into the table inside a savepoint: that is as fast as a raw
    COPY. If anything of that range turns up (a concurrent writer got there first), the
    savepoint is rolled back and the staging path (COPY into a temp table, then
    ``INSERT ... ON CONFLICT DO NOTHING``) runs instead — same result, never a duplicate,
    never half a batch.

    Args:
        conn: an open connection (not inside a transaction).
        table: ``price_data_5min`` or ``prices_1h``.
        rows: the blocks; any number of items and timestamps.
        before_commit: extra work done in the same transaction (the collector records its
            run and any gap there, so data and bookkeeping commit together).
        fast_path: allow the direct COPY for ranges that hold no rows yet.

    Raises:
        ValueError: for a table that does not hold price blocks.
    """
    if table not in PRICE_TABLES:
        raise ValueError(f"table must be one of {', '.join(PRICE_TABLES)}, got {table!r}")
    good = [
        (r.item_id, r.timestamp, r.avg_high_price, r.high_price_volume, r.avg_low_price,
         r.low_price_volume)
        for r in rows
        if 0 <= r.item_id <= MAX_INT4
        and (r.avg_high_price is None or 0 <= r.avg_high_price <= MAX_PRICE)
        and (r.avg_low_price is None or 0 <= r.avg_low_price <= MAX_PRICE)
        and 0 <= r.high_price_volume <= MAX_INT8 and 0 <= r.low_price_volume <= MAX_INT8
        and r.timestamp.tzinfo is not None
    ]
    rejected = len(rows) - len(good)
    lo = hi = None
    if good:
        lo = min(r[1] for r in good)
        hi = max(r[1] for r in good)
        if table in partitions.PARTITIONED:
            partitions.ensure(conn, table, lo, hi)
    # First try: the direct COPY when the range is empty. If a concurrent writer stored part
    # of the range meanwhile, the COPY hits a duplicate key, the whole transaction rolls back
    # (no savepoint round trips on the common path) and the staging path runs instead.
    tries = (True, False) if fast_path and good else (False,)
    for direct in tries:
        try:
            with _transaction(conn):
                written = 0
                if good and direct and _range_is_empty(conn, table, lo, hi):
                    written = _copy(conn, table, _PRICE_COLS, _PRICE_TYPES, good)
                elif good:
                    written = _stage_and_insert(
                        conn, table, _PRICE_COLS, good,
                        sql.SQL('ON CONFLICT (item_id, "timestamp") DO NOTHING'),
                        types=_PRICE_TYPES)
                return _done(conn, before_commit, table, len(rows), written, rejected)
        except psycopg.errors.UniqueViolation:
            if not direct:
                raise
    raise AssertionError("unreachable")


def _range_is_empty(conn: psycopg.Connection[Any], table: str, lo: Any, hi: Any) -> bool:
    row = conn.execute(sql.SQL(
        'SELECT NOT EXISTS (SELECT 1 FROM {t} WHERE "timestamp" BETWEEN %s AND %s)').format(
        t=sql.Identifier(table)), (lo, hi)).fetchone()
    return bool(row and row[0])


def write_latest(conn: psycopg.Connection[Any], collected_at: datetime,
                 rows: Sequence[LatestPrice], *,
                 before_commit: BeforeCommit | None = None
                 ) -> WriteResult:
    """Write one ``/latest`` poll into ``prices_latest_1m`` at ``collected_at`` (a minute)."""
    tally = [0, 0]
    good = list(_counted(rows, valid_latest, tally))
    if good:
        partitions.ensure(conn, "prices_latest_1m", collected_at)
    with _transaction(conn):
        written = 0
        if good:
            written = _stage_and_insert(
                conn, "prices_latest_1m", _LATEST_COLS,
                ((r.item_id, collected_at, r.high, r.high_time, r.low, r.low_time)
                 for r in good),
                sql.SQL('ON CONFLICT (item_id, "timestamp") DO NOTHING'))
        return _done(conn, before_commit, "prices_latest_1m", tally[0], written, tally[1])


def upsert_items(conn: psycopg.Connection[Any], rows: Sequence[ItemMapping], *,
                 before_commit: BeforeCommit | None = None
                 ) -> WriteResult:
    """Insert new items and update changed ones; ``written`` counts inserted + changed rows.

    An unchanged item is not rewritten (``WHERE ... IS DISTINCT FROM``), so a daily run
    that finds nothing new writes nothing and ``updated_at`` keeps meaning "last change".
    """
    tally = [0, 0]
    good = list(_counted(rows, valid_item, tally))
    data_cols = [c for c in _ITEM_COLS if c != "item_id"]
    changed = sql.SQL(" OR ").join(
        sql.SQL("items.{c} IS DISTINCT FROM EXCLUDED.{c}").format(c=sql.Identifier(c))
        for c in data_cols)
    sets = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in data_cols)
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in _ITEM_COLS)
    with _transaction(conn):
        written = 0
        if good:
            written = _stage_and_insert(
                conn, "items", _ITEM_COLS,
                ((r.item_id, r.name.strip(), r.examine, r.members, True, r.lowalch,
                  r.highalch, r.value, r.limit, r.icon, wiki_url(r.name)) for r in good),
                sql.SQL("ON CONFLICT (item_id) DO UPDATE SET {sets}, updated_at = now() "
                        "WHERE {changed}").format(sets=sets, changed=changed),
                # One row per item: DO UPDATE may not touch the same row twice.
                select=sql.SQL("SELECT DISTINCT ON (item_id) {cols} FROM {stage} "
                               "ORDER BY item_id").format(
                    cols=col_ids, stage=sql.Identifier("_stage_items")))
        return _done(conn, before_commit, "items", tally[0], written, tally[1])


def write_news(conn: psycopg.Connection[Any], rows: Sequence[NewsItem], *,
               before_commit: BeforeCommit | None = None
               ) -> WriteResult:
    """Store new articles (``ON CONFLICT (guid) DO NOTHING``); long fields are truncated."""
    tally = [0, 0]
    good = list(_counted(rows, lambda r: bool(r.guid.strip() and r.title.strip()),
                                tally))
    lim = _NEWS_LIMITS
    with _transaction(conn):
        written = 0
        if good:
            written = _stage_and_insert(
                conn, "osrs_news", _NEWS_COLS,
                ((_clip(r.guid.strip(), lim["guid"]), _clip(r.title, lim["title"]),
                  _clip(r.link, lim["link"]), _clip(r.description, lim["description"]),
                  _clip(r.category, lim["category"]), r.pub_date) for r in good),
                sql.SQL("ON CONFLICT (guid) DO NOTHING"))
        return _done(conn, before_commit, "osrs_news", tally[0], written, tally[1])


def write_player_count(conn: psycopg.Connection[Any], block: datetime, count: int, *,
                       before_commit: BeforeCommit | None = None
                       ) -> WriteResult:
    """Store the player count of one block; the first count of a block wins (idempotent)."""
    valid = 0 <= count <= MAX_INT4
    with _transaction(conn):
        written = 0
        if valid:
            cur = conn.execute(
                'INSERT INTO player_counts ("timestamp", count) VALUES (%s, %s) '
                'ON CONFLICT ("timestamp") DO NOTHING', (block, count))
            written = max(0, cur.rowcount)
        return _done(conn, before_commit, "player_counts", 1, written, 0 if valid else 1)


def copy_price_blocks_raw(conn: psycopg.Connection[Any], table: str,
                          rows: Iterable[PriceBlock]) -> int:
    """A plain binary COPY into the table itself (no staging, no conflict handling).

    Only for the benchmark baseline and for loading an empty table; a duplicate key fails
    the whole COPY.
    """
    with _transaction(conn):
        return _copy(conn, table, _PRICE_COLS, _PRICE_TYPES,
                     ((r.item_id, r.timestamp, r.avg_high_price, r.high_price_volume,
                       r.avg_low_price, r.low_price_volume) for r in rows))
