"""The vectorised binary COPY encoder (byte layout; the database round trip is tested in
tests/integration/test_inference.py)."""

from __future__ import annotations

import struct

import numpy as np

from gept.inference import copybin


def test_rows_are_laid_out_as_postgres_expects() -> None:
    cols: list[copybin.Column] = [
        copybin.Fixed(np.array([1, -2]), ">i4"),
        copybin.Choice(np.array([1, 0]), [b"ab", None]),
        copybin.Fixed(np.array([1.5, 2.5]), ">f8", null=np.array([False, True])),
    ]
    data = copybin.encode(cols, header=True, trailer=True)
    assert data.startswith(copybin.HEADER)
    assert data.endswith(b"\xff\xff")
    body = data[len(copybin.HEADER):-2]
    row1 = struct.pack(">hii", 3, 4, 1) + struct.pack(">i", -1) + struct.pack(">id", 8, 1.5)
    row2 = struct.pack(">hii", 3, 4, -2) + struct.pack(">i", 2) + b"ab" + struct.pack(">i", -1)
    assert body == row1 + row2


def test_chunks_concatenate_to_one_stream() -> None:
    values = np.arange(10, dtype=np.int64)
    whole = copybin.encode([copybin.Fixed(values, ">i8")], header=True, trailer=True)
    parts = (copybin.encode([copybin.Fixed(values[:4], ">i8")], header=True)
             + copybin.encode([copybin.Fixed(values[4:], ">i8")], trailer=True))
    assert whole == parts
