"""Whatever JSON arrives, the parsers answer with rows or a MalformedResponse: never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gept.market import parse
from gept.market.errors import MalformedResponse
from gept.market.models import MAX_PRICE

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40),
                    st.floats(allow_nan=True), st.text(max_size=5))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=12)
ids = st.one_of(st.integers(-5, 2**40).map(str), st.text(max_size=4),
                st.sampled_from(["\u00b2", "\u0661", "+1", " 2", "1e3", ""]))
block_fields = st.fixed_dictionaries({}, optional={
    "avgHighPrice": scalars, "highPriceVolume": scalars, "avgLowPrice": scalars,
    "lowPriceVolume": scalars})
snapshots = st.fixed_dictionaries(
    {"data": st.dictionaries(ids, st.one_of(block_fields, json_values), max_size=5)},
    optional={"timestamp": scalars})

PARSERS = (parse.parse_snapshot, parse.parse_latest, parse.parse_mapping,
           parse.parse_timeseries)


def _each_parser(doc: Any) -> None:
    failures: list[MalformedResponse] = []
    for parser in PARSERS:
        try:
            result = parser(doc)
        except MalformedResponse as exc:
            failures.append(exc)
            continue
        rows = result.rows
        for row in rows:
            for name in ("avg_high_price", "avg_low_price", "high", "low", "value"):
                value = getattr(row, name, None)
                assert value is None or 0 <= value <= MAX_PRICE
    assert all(exc.field for exc in failures)  # every refusal names where it went wrong


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_never_crashes_a_parser(doc: Any) -> None:
    _each_parser(doc)
    _each_parser(json.dumps(doc, allow_nan=True).encode())


@settings(max_examples=200, deadline=None)
@given(snapshots)
def test_snapshot_shaped_json_yields_valid_rows_or_a_named_error(doc: dict[str, Any]) -> None:
    _each_parser(doc)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_page_parsers(body: bytes) -> None:
    decl = [b'<?xml version="1.0" encoding="bogus"?><rss/>', b"<rss><channel><item>"]
    for parser in (parse.parse_news, parse.parse_player_count):
        for extra in decl:
            with contextlib.suppress(MalformedResponse):
                parser(extra + body)
        with contextlib.suppress(MalformedResponse):
            parser(body)
