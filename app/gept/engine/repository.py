"""Every SQL statement the engine runs, one function each, one statement per function.

Statements filter the partitioned ``predictions`` table on an explicit batch time (a bound
parameter, so PostgreSQL prunes to one daily partition at plan time) and use the primary key
``(time, item_id, hour_offset, offset_pct)``; no index beyond the schema's is needed.

Example:
    >>> async with pool.connection() as conn:          # doctest: +SKIP
    ...     newest = await newest_batch(conn)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from gept.engine.policy import RISKS, STYLES, loosest
from gept.engine.recommend import Candidate

Conn = AsyncConnection[Any]

_COMBOS = [
    (style, risk, w.min_hours, w.max_hours, t.min_offset_pct, t.max_offset_pct,
     t.min_expected_value, t.min_fill_probability)
    for style, w in STYLES.items() for risk, t in RISKS.items()
]

# The best configuration per (style, risk, item, offset) of one batch, computed inside
# PostgreSQL so the engine's event loop only parses a few thousand rows per combination (not
# 168k). Per offset, so that a client's margin (min/max_offset_pct) picks among them.
# Items and volumes are NOT joined here: the row estimate of these stacked filters is far too
# low, and the planner then nests a scan of the volume aggregate inside the loop over
# predictions (measured: 32 s instead of 1 s with 50M rows). They come from ITEMS_SQL.
_CANDIDATES = sql.SQL("""
WITH combos (style, risk, h_min, h_max, o_min, o_max, ev_min, p_min) AS (VALUES {combos})
SELECT DISTINCT ON (c.style, c.risk, p.item_id, p.offset_pct)
       c.style, c.risk, p.item_id, p.item_name, p.hour_offset, p.offset_pct::float8,
       p.fill_probability, p.expected_value, p.buy_price, p.sell_price, p.confidence,
       p.model_id
  FROM predictions p
  JOIN combos c
    ON p.hour_offset BETWEEN c.h_min AND c.h_max
   AND p.offset_pct BETWEEN c.o_min AND c.o_max
   AND p.expected_value >= c.ev_min AND p.fill_probability >= c.p_min
 WHERE p."time" = %(t)s AND p.fill_probability >= %(p_min)s AND p.expected_value >= %(ev_min)s
   AND p.offset_pct BETWEEN %(o_min)s AND %(o_max)s AND p.hour_offset <= %(h_max)s
   AND p.buy_price > 0
 ORDER BY c.style, c.risk, p.item_id, p.offset_pct,
          p.expected_value * p.fill_probability DESC, p.hour_offset
""")

# Every item's name, buy limit, icon and members flag, its traded volume over the 24 hours
# before the batch, and its mean mid price over the last 2 hours and the 24 (the trend).
# A FULL JOIN of two small sets: PostgreSQL must hash or merge it, whatever it estimates.
ITEMS_SQL = """
SELECT coalesce(i.item_id, v.item_id), i.name, i.buy_limit, v.vol, i.icon, i.members,
       v.recent_mid, v.day_mid
  FROM items i
  FULL JOIN (SELECT item_id, sum(high_price_volume + low_price_volume)::bigint AS vol,
                    (avg(coalesce(avg_high_price + avg_low_price, 2 * avg_high_price,
                                  2 * avg_low_price) / 2.0)
                       FILTER (WHERE "timestamp" > %(t)s - interval '2 hours'))::float8
                       AS recent_mid,
                    (avg(coalesce(avg_high_price + avg_low_price, 2 * avg_high_price,
                                  2 * avg_low_price) / 2.0))::float8 AS day_mid
               FROM price_data_5min
              WHERE "timestamp" > %(t)s - interval '24 hours' AND "timestamp" <= %(t)s
              GROUP BY item_id) v ON v.item_id = i.item_id
"""


def _candidates_statement() -> sql.Composed:
    rows = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {}, {}::numeric, {}::numeric, {}::float8, {}::float8)").format(
            *(sql.Literal(v) for v in combo))
        for combo in _COMBOS
    )
    return _CANDIDATES.format(combos=rows)


CANDIDATES_SQL = _candidates_statement()


async def newest_batch(conn: Conn) -> datetime | None:
    """The time of the newest committed predictions batch (None when there is none)."""
    cur = await conn.execute("SELECT max(\"time\") FROM prediction_batches")
    row = await cur.fetchone()
    return None if row is None else row[0]


CandidateRow = tuple[Any, ...]
"""``(style, risk, item_id, item_name, hour_offset, offset_pct, fill_probability,
expected_value, buy_price, sell_price, confidence, model_id)``."""


@dataclass(frozen=True)
class ItemFacts:
    """What sizing needs per item: name, buy limit, 24 h volume (None: no volume data at all);
    and what the clients see: icon, members flag, mid prices for the trend.
    """

    names: dict[int, str]
    buy_limits: dict[int, int | None]
    volumes: dict[int, int] | None
    icons: dict[int, str | None] = field(default_factory=dict)
    members: dict[int, bool | None] = field(default_factory=dict)
    mids: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)


async def candidate_rows(conn: Conn, batch_time: datetime
                         ) -> tuple[list[CandidateRow], ItemFacts]:
    """Every (style, risk) combination's best row per item of one batch, and item facts.

    Two statements, run once per batch (never per request).
    """
    loose = loosest()
    params = {"t": batch_time, "p_min": loose.min_fill_probability,
              "ev_min": loose.min_expected_value, "o_min": loose.min_offset_pct,
              "o_max": loose.max_offset_pct,
              "h_max": max(w.max_hours for w in STYLES.values())}
    cur = await conn.execute(CANDIDATES_SQL, params)
    rows = await cur.fetchall()
    cur = await conn.execute(ITEMS_SQL, {"t": batch_time})
    names: dict[int, str] = {}
    limits: dict[int, int | None] = {}
    volumes: dict[int, int] = {}
    icons: dict[int, str | None] = {}
    members: dict[int, bool | None] = {}
    mids: dict[int, tuple[float | None, float | None]] = {}
    for item_id, name, limit, vol, icon, member, recent, day in await cur.fetchall():
        if name is not None:
            names[item_id] = name
        limits[item_id] = limit
        if vol is not None:
            volumes[item_id] = int(vol)
        icons[item_id], members[item_id], mids[item_id] = icon, member, (recent, day)
    return rows, ItemFacts(names, limits, volumes or None, icons, members, mids)


def to_candidate(row: CandidateRow, facts: ItemFacts) -> tuple[str, str, Candidate]:
    """``(style, risk, candidate)`` from one row of :func:`candidate_rows` and the facts.

    Without any volume data for the window (the 5-minute collector down) volume is unknown
    (None) and does not bound quantities; an item without trades in it has volume 0.
    """
    item_id = row[2]
    volume = None if facts.volumes is None else facts.volumes.get(item_id, 0)
    return row[0], row[1], Candidate(
        item_id=item_id, item_name=facts.names.get(item_id) or str(row[3]), hour_offset=row[4],
        offset_pct=row[5], fill_probability=row[6], expected_value=row[7], buy_price=row[8],
        sell_price=row[9], confidence=row[10], model_id=row[11],
        buy_limit=facts.buy_limits.get(item_id), volume_24h=volume)


async def beta_models(conn: Conn, batch_time: datetime) -> frozenset[int]:
    """Registry models marked beta (``metrics->>'beta' = 'true'``) that wrote to the batch."""
    cur = await conn.execute("""
        SELECT m.id FROM model_registry m, prediction_batches b
         WHERE b."time" = %(t)s AND m.id = ANY (b.model_ids)
           AND m.metrics ->> 'beta' = 'true'""", {"t": batch_time})
    return frozenset(int(r[0]) for r in await cur.fetchall())


async def health(conn: Conn) -> tuple[datetime | None, int]:
    """Newest batch time and the number of ACTIVE models, in one round trip."""
    cur = await conn.execute(
        "SELECT (SELECT max(\"time\") FROM prediction_batches),"
        " (SELECT count(*) FROM model_registry WHERE status = 'ACTIVE')")
    row = await cur.fetchone()
    assert row is not None
    return row[0], int(row[1])


async def ops_gauges(conn: Conn) -> list[dict[str, Any]]:
    """Per inference role: ACTIVE model count, last successful run, whether the newest failed."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        SELECT r.role,
               (SELECT count(*) FROM model_registry WHERE status = 'ACTIVE') AS models_active,
               (SELECT extract(epoch FROM max(finished_at))::float8 FROM inference_runs
                 WHERE role = r.role AND status = 'completed') AS last_success,
               (SELECT status = 'failed' FROM inference_runs WHERE role = r.role
                 ORDER BY started_at DESC LIMIT 1) AS last_failed
          FROM (VALUES ('primary'), ('fallback')) AS r (role)""")
    return await cur.fetchall()


async def item_predictions(conn: Conn, batch_time: datetime | None, item_id: int
                           ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The item (None when unknown) and all its prediction rows of one batch."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        SELECT i.item_id, i.name, i.buy_limit,
               coalesce((SELECT json_agg(json_build_object(
                   'hour_offset', p.hour_offset, 'offset_pct', p.offset_pct::float8,
                   'fill_probability', p.fill_probability, 'expected_value', p.expected_value,
                   'buy_price', p.buy_price, 'sell_price', p.sell_price,
                   'confidence', p.confidence, 'model_id', p.model_id, 'item_name', p.item_name)
                   ORDER BY p.hour_offset, p.offset_pct)
                 FROM predictions p WHERE p."time" = %(t)s AND p.item_id = %(i)s), '[]'::json)
                 AS rows
          FROM (SELECT %(i)s::int AS item_id) q
          LEFT JOIN items i USING (item_id)""", {"t": batch_time, "i": item_id})
    row = await cur.fetchone()
    assert row is not None
    rows: list[dict[str, Any]] = row["rows"]
    if row["name"] is None and not rows:
        return None, []
    item = {"item_id": item_id, "name": row["name"] or rows[0]["item_name"],
            "buy_limit": row["buy_limit"]}
    return item, rows


async def prediction_row(conn: Conn, batch_time: datetime, item_id: int, hour_offset: int,
                         offset_pct: float) -> Candidate | None:
    """One configuration of one batch by primary key, with the item's buy limit and volume."""
    cur = await conn.execute("""
        SELECT p.item_id, coalesce(i.name, p.item_name), p.hour_offset, p.offset_pct::float8,
               p.fill_probability, p.expected_value, p.buy_price, p.sell_price, p.confidence,
               p.model_id, i.buy_limit,
               (SELECT sum(high_price_volume + low_price_volume)::bigint FROM price_data_5min
                 WHERE item_id = p.item_id AND "timestamp" > %(t)s - interval '24 hours'
                   AND "timestamp" <= %(t)s)
          FROM predictions p LEFT JOIN items i ON i.item_id = p.item_id
         WHERE p."time" = %(t)s AND p.item_id = %(i)s AND p.hour_offset = %(h)s
           AND p.offset_pct = %(o)s::numeric""",
                             {"t": batch_time, "i": item_id, "h": hour_offset,
                              "o": f"{offset_pct:.4f}"})
    row = await cur.fetchone()
    if row is None:
        return None
    return Candidate(item_id=row[0], item_name=row[1], hour_offset=row[2], offset_pct=row[3],
                     fill_probability=row[4], expected_value=row[5], buy_price=row[6],
                     sell_price=row[7], confidence=row[8], model_id=row[9], buy_limit=row[10],
                     volume_24h=None if row[11] is None else int(row[11]))


async def search_items(conn: Conn, query: str, limit: int) -> list[dict[str, Any]]:
    """Items whose name contains ``query`` (case-insensitive), best matches first."""
    needle = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        SELECT item_id, name, members, buy_limit, icon
          FROM items
         WHERE lower(name) LIKE '%%' || %(n)s || '%%'
         ORDER BY lower(name) = %(q)s DESC, lower(name) LIKE %(n)s || '%%' DESC,
                  length(name), name
         LIMIT %(l)s""", {"n": needle, "q": query.lower(), "l": limit})
    return await cur.fetchall()


async def models(conn: Conn, status: str | None) -> list[dict[str, Any]]:
    """Registry entries (no paths, no artifacts), newest first; optionally one status."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        SELECT id, scope, run_id, status, status_changed_at, trained_at, activated_at,
               mean_auc::float8 AS mean_auc, validation_auc::float8 AS validation_auc,
               validation_passed, windows_hours, n_samples
          FROM model_registry
         WHERE %(s)s::text IS NULL OR status = %(s)s
         ORDER BY (status = 'ACTIVE') DESC, trained_at DESC, id DESC
         LIMIT 500""", {"s": status})
    return await cur.fetchall()
