"""One predictions batch held as columns (numpy), and how it is written.

The batch is written with one binary COPY and its ``prediction_batches`` row in the same
transaction: readers (the engine) look up the newest batch in ``prediction_batches``, so
they see either the whole batch or none of it. ``prediction_batches.time`` is the primary
key: a block can never be written twice, whichever host tries.

Example:
    >>> with conn.transaction():                                   # doctest: +SKIP
    ...     write(conn, batch, run_id="20260101_120500_primary", role="primary")
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.adapt import PyFormat
from psycopg.copy import QueuedLibpqWriter

from gept.db import partitions
from gept.inference import copybin

COLUMNS = ("time", "item_id", "item_name", "hour_offset", "target_hour", "offset_pct",
           "fill_probability", "expected_value", "buy_price", "sell_price", "current_high",
           "current_low", "confidence", "model_id")
CONFIDENCE = ("low", "medium", "high")
COPY_SQL = (f"COPY predictions ({', '.join(chr(34) + c + chr(34) for c in COLUMNS)}) "
            "FROM STDIN (FORMAT BINARY)")  # the parent table (rows routed per partition)
CHUNK_ROWS = 50_000

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass
class Batch:
    """Rows of one batch, column-wise. ``*_code`` columns index into their choice lists."""

    time: datetime
    item_id: I64
    name_code: I64
    names: list[str]
    hour_offset: I64
    offset_code: I64
    offsets: list[Decimal]
    fill_probability: F64
    expected_value: F64
    buy_price: I64
    sell_price: I64
    current_high: I64
    current_low: I64
    confidence_code: I64
    model_id: I64
    model_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.item_id.size)

    @property
    def items(self) -> int:
        """Distinct items in the batch."""
        return int(np.unique(self.item_id).size)

    def encode(self, conn: psycopg.Connection[Any], lo: int, hi: int) -> bytes:
        """Rows [lo, hi) as binary COPY data (header on the first, trailer on the last)."""
        return b"".join(bytes(p) for p in self.encode_parts(conn, lo, hi))

    def encode_parts(self, conn: psycopg.Connection[Any], lo: int,
                     hi: int) -> Iterator[memoryview | bytes]:
        """Rows [lo, hi) as binary COPY data, in pieces for ``copy.write``."""
        numeric = conn.adapters.get_dumper(Decimal, PyFormat.BINARY)(Decimal, conn)
        time_us = int(self.time.timestamp() * 1_000_000) - copybin.PG_EPOCH_US
        n = hi - lo
        sl = slice(lo, hi)
        target_us = time_us + self.hour_offset[sl] * 3_600_000_000
        cols: list[copybin.Column] = [
            copybin.Fixed(np.full(n, time_us, dtype=np.int64), ">i8", constant=True),
            copybin.Fixed(self.item_id[sl], ">i4"),
            copybin.Choice(self.name_code[sl], [s.encode() for s in self.names]),
            copybin.Fixed(self.hour_offset[sl], ">i2"),
            copybin.Fixed(target_us, ">i8"),
            copybin.Choice(self.offset_code[sl], [bytes(numeric.dump(o) or b"")
                                                  for o in self.offsets]),
            copybin.Fixed(self.fill_probability[sl], ">f8"),
            copybin.Fixed(self.expected_value[sl], ">f8"),
            copybin.Fixed(self.buy_price[sl], ">i8"),
            copybin.Fixed(self.sell_price[sl], ">i8"),
            copybin.Fixed(self.current_high[sl], ">i8"),
            copybin.Fixed(self.current_low[sl], ">i8"),
            copybin.Choice(self.confidence_code[sl], [c.encode() for c in CONFIDENCE]),
            copybin.Fixed(self.model_id[sl], ">i8"),
        ]
        return copybin.encode_parts(cols, header=lo == 0, trailer=hi == len(self))


def copy_rows(conn: psycopg.Connection[Any], batch: Batch, table_sql: str = COPY_SQL) -> int:
    """Stream the batch into ``predictions`` (or ``table_sql``) with binary COPY.

    A writer thread sends while the next chunk is encoded, so encoding overlaps with
    PostgreSQL storing the previous chunk.
    """
    with conn.cursor() as cur, cur.copy(table_sql, writer=QueuedLibpqWriter(cur)) as copy:
        if len(batch) == 0:
            copy.write(copybin.HEADER + copybin.TRAILER)
        for lo in range(0, len(batch), CHUNK_ROWS):
            for part in batch.encode_parts(conn, lo, min(len(batch), lo + CHUNK_ROWS)):
                copy.write(part)
    return len(batch)


def copy_sql(table: str) -> str:
    """The binary COPY statement for ``table`` (the parent or one of its partitions)."""
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    return f'COPY "{table}" ({cols}) FROM STDIN (FORMAT BINARY)'


def write(conn: psycopg.Connection[Any], batch: Batch, *, run_id: str, role: str) -> int:
    """COPY the rows and insert the ``prediction_batches`` row (caller owns the transaction).

    Every row of a batch has the same ``time``, so it belongs to one daily partition; the
    rows are copied straight into that partition (which the caller has ensured), sparing
    PostgreSQL the per-row partition routing. The partition constraint is still checked.

    Raises:
        psycopg.errors.UniqueViolation: when this block already has a batch.
    """
    utc = batch.time.astimezone(UTC)
    table = partitions.partition_name("predictions", datetime(utc.year, utc.month, utc.day,
                                                              tzinfo=UTC), "day")
    rows = copy_rows(conn, batch, copy_sql(table))
    conn.execute(
        'INSERT INTO prediction_batches ("time", run_id, role, rows_written, items, model_ids)'
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (batch.time, run_id, role, rows, batch.items, batch.model_ids))
    return rows
