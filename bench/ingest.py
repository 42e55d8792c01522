"""Ingest benchmark: the collector's writer against a raw COPY, side by side in one run.

Starts its own throwaway PostgreSQL (gept.testing.pgserver), migrates it, then measures:

1. one 5-minute block of the market simulator's default catalogue (4,300 items, of which a
   block lists the ~1,600 that traded, as the real API does) written by
   ``gept.db.writer.write_price_blocks`` (the collector's path: validation, staging COPY,
   INSERT ... ON CONFLICT, one transaction), median of several runs, each a new block;
2. backfilling 1,000,000 rows (~620 consecutive simulator blocks, fetched block by block and
   written in groups of ``GROUP_ROWS`` rows, as ``gept collect backfill`` does) versus a
   raw ``COPY`` of the same rows into the same table. The ratio is raw time / writer time
   (1.0x = as fast as raw COPY). The machine may be shared, so the contenders run in
   interleaved rounds (rotating order) on the same table state. The staging-only path
   (temp table + ``INSERT ... ON CONFLICT``, what a partly stored block takes) is
   reported too.

Usage:
    .venv/bin/python bench/ingest.py [--items 4300] [--rows 1000000]

The last line reads exactly:
    ingest: snapshot <seconds> s for <rows> rows (4300 items); backfill <ratio>x raw COPY
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from gept.collectors.backfill import GROUP_ROWS
from gept.db import partitions
from gept.db.migrate import migrate
from gept.db.writer import copy_price_blocks_raw, write_price_blocks
from gept.market.models import PriceBlock
from gept.market.simulator import DEFAULT_ITEMS, SyntheticMarket
from gept.testing.pgserver import PgServer

TABLE = "price_data_5min"
START = datetime(2026, 1, 5, tzinfo=UTC)


def blocks(count: int, market: SyntheticMarket, start: datetime) -> list[list[PriceBlock]]:
    """``count`` consecutive 5-minute blocks as the API sends them (traded items only)."""
    end = start + timedelta(minutes=5 * count)
    return [list(snap.rows) for snap in market.history(start, end)]


def blocks_for(rows: int, market: SyntheticMarket, start: datetime
               ) -> list[list[PriceBlock]]:
    """Consecutive blocks from ``start`` until they hold at least ``rows`` rows."""
    out: list[list[PriceBlock]] = []
    total = 0
    while total < rows:
        more = blocks(288, market, start + timedelta(minutes=5 * len(out)))
        for block in more:
            if total >= rows:
                break
            out.append(block)
            total += len(block)
    return out


def vacuum(conn: psycopg.Connection[tuple[object, ...]], command: str) -> None:
    """Commit, then run ``command`` (a VACUUM, which cannot run in a transaction)."""
    conn.commit()
    conn.autocommit = True
    try:
        conn.execute(command)
    finally:
        conn.autocommit = False


def empty_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Empty the table and refresh statistics so each contender starts alike."""
    conn.execute(f"TRUNCATE {TABLE}")
    vacuum(conn, f"VACUUM ANALYZE {TABLE}")


def backfill_groups(chunk: list[list[PriceBlock]]) -> list[list[PriceBlock]]:
    """Blocks grouped as ``gept collect backfill`` writes them (GROUP_ROWS rows a write)."""
    groups: list[list[PriceBlock]] = [[]]
    for block in chunk:
        if len(groups[-1]) >= GROUP_ROWS:
            groups.append([])
        groups[-1].extend(block)
    return [g for g in groups if g]


def remove_range(conn: psycopg.Connection[tuple[object, ...]], lo: datetime,
                 hi: datetime) -> None:
    """Delete one round's rows and vacuum, so the next contender starts from the same table."""
    conn.execute(f'DELETE FROM {TABLE} WHERE "timestamp" BETWEEN %s AND %s', (lo, hi))
    vacuum(conn, f"VACUUM {TABLE}")


def main() -> None:
    """Run the benchmark and print the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    market = SyntheticMarket(items=args.items, seed=args.seed)

    with PgServer.start() as server:
        dsn = server.create_database("bench")
        with psycopg.connect(dsn) as conn:
            migrate(conn)
        with psycopg.connect(dsn) as conn:
            # Partitions exist in production long before a block arrives (gept db migrate
            # creates them ahead); create them here so neither contender pays for DDL.
            partitions.ensure(conn, TABLE, START - timedelta(days=2), START + timedelta(days=40))
            conn.commit()

            # 1. snapshots: a warm-up, then the median of several new blocks.
            snaps = blocks(args.snapshots + 1, market, START - timedelta(days=1))
            write_price_blocks(conn, TABLE, snaps[0])
            times = []
            for snap in snaps[1:]:
                t0 = time.perf_counter()
                result = write_price_blocks(conn, TABLE, snap)
                times.append(time.perf_counter() - t0)
                assert result.written == len(snap), result
            snapshot_s = statistics.median(times)
            per_block = round(statistics.median(len(s) for s in snaps[1:]))
            print(f"snapshot: {per_block} rows ({args.items} items), median "
                  f"{snapshot_s * 1000:.1f} ms "
                  f"over {len(times)} blocks (min {min(times) * 1000:.1f} ms, "
                  f"max {max(times) * 1000:.1f} ms)")

            # 2. backfill vs raw COPY of the same rows into the same table, in interleaved
            # rounds (the order rotates) so that load from other processes hits all three
            # contenders alike. Before each contender the table holds exactly the earlier
            # rounds' rows; the round's rows are deleted (and vacuumed) between contenders.
            data = blocks_for(args.rows, market, START)
            total, n_blocks = sum(len(b) for b in data), len(data)
            empty_table(conn)
            size = -(-len(data) // args.rounds)
            chunks = [data[i:i + size] for i in range(0, len(data), size)]
            spent = {"raw": 0.0, "writer": 0.0, "staging": 0.0}
            order = list(spent)
            for r, chunk in enumerate(chunks):
                lo, hi = chunk[0][0].timestamp, chunk[-1][0].timestamp
                turn = order[r % 3:] + order[:r % 3]
                for k, who in enumerate(turn):
                    t0 = time.perf_counter()
                    if who == "raw":
                        n = copy_price_blocks_raw(conn, TABLE, (x for b in chunk for x in b))
                    else:
                        n = sum(write_price_blocks(conn, TABLE, g,
                                                   fast_path=who == "writer").written
                                for g in backfill_groups(chunk))
                    spent[who] += time.perf_counter() - t0
                    assert n == sum(len(b) for b in chunk), (who, n)
                    if k < len(turn) - 1:
                        remove_range(conn, lo, hi)
            raw_s, writer_s, staged_s = spent["raw"], spent["writer"], spent["staging"]
            with conn.cursor() as cur:
                stored = cur.execute(f"SELECT count(*) FROM {TABLE} WHERE "
                                     '"timestamp" >= %s', (START,)).fetchone()
            conn.commit()
            assert stored == (total,), stored
            # Idempotence under load: a second pass writes nothing.
            t0 = time.perf_counter()
            again = sum(write_price_blocks(conn, TABLE, b).written for b in data[:10])
            rerun_s = time.perf_counter() - t0
            assert again == 0
            ratio = raw_s / writer_s
            print(f"raw COPY: {total} rows in {raw_s:.2f} s ({total / raw_s:,.0f} rows/s)")
            print(f"backfill writer: {total} rows in {writer_s:.2f} s "
                  f"({total / writer_s:,.0f} rows/s, {n_blocks} blocks, "
                  f"{GROUP_ROWS:,} rows a write)")
            print(f"staging path only (COPY to temp + INSERT ON CONFLICT): {total} rows in "
                  f"{staged_s:.2f} s "
                  f"({raw_s / staged_s:.2f}x raw COPY)")
            print(f"re-run of 10 stored blocks wrote 0 rows in {rerun_s:.2f} s")
            print(f"snapshot vs raw COPY of the same size: "
                  f"{(raw_s / total * per_block) / snapshot_s:.2f}x")
    print(f"ingest: snapshot {snapshot_s:.3f} s for {per_block} rows ({args.items} items); "
          f"backfill {ratio:.2f}x raw COPY")


if __name__ == "__main__":
    main()
