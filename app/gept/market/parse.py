"""Pure parsers: response bodies (bytes or decoded JSON) to typed rows. No I/O here.

Rules, the same for every endpoint:

* Item ids arrive as JSON object keys (strings) and leave as ``int``.
* Every price and time may be ``null``; a missing or null volume counts as 0 trades.
* A value of the wrong *type* (a string where an integer belongs, a list where an object
  belongs) means the response is not what the API promises: ``MalformedResponse`` naming
  the endpoint and the field, e.g. ``data.4151.avgHighPrice``. The client retries those.
* RSS and HTML pages (news, player count) are parsed in ``gept.market.pages`` and
  re-exported here, so ``gept.market.parse`` is the one place to look for parsers.
* A value of the right type but out of range (a price outside [0, 2,147,483,647], a negative
  volume or time) condemns only its row: the row is left out and reported as a
  ``Rejection``, so one bad item never costs the whole block.

Example:
    >>> snap = parse_snapshot(b'{"data": {"4151": {"avgHighPrice": 1500000, '
    ...     b'"highPriceVolume": 12, "avgLowPrice": null, "lowPriceVolume": 0}}, '
    ...     b'"timestamp": 1767225600}', "/5m")
    >>> snap.rows[0].item_id, snap.rows[0].avg_high_price, snap.rows[0].avg_low_price
    (4151, 1500000, None)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from gept.market.errors import MalformedResponse
from gept.market.models import (
    MAX_PRICE,
    ItemMapping,
    LatestPrice,
    PriceBlock,
    Rejection,
    Snapshot,
)
from gept.market.pages import parse_news, parse_player_count

__all__ = ["Parsed", "load_json", "parse_latest", "parse_mapping", "parse_news",
           "parse_player_count", "parse_snapshot", "parse_timeseries"]

T = TypeVar("T")

MAX_VOLUME = 2**62
"""Volumes above this are nonsense (and would overflow a bigint sum); the row is rejected."""
MAX_EPOCH = 2**33
"""Unix times past the year 2242 are nonsense; the row is rejected."""


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T]):
    """Rows a parser accepted and the rows it rejected (out-of-range values)."""

    rows: list[T]
    rejected: list[Rejection] = field(default_factory=list)


class _OutOfRange(Exception):
    """A well-typed value outside its range: rejects one row, never the batch."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(reason)
        self.name = name
        self.value = value
        self.reason = reason


def load_json(body: bytes | str | object, endpoint: str) -> object:
    """Decode a JSON body; already-decoded objects pass through unchanged.

    Raises:
        MalformedResponse: when the bytes are not JSON (field ``body``).
    """
    if not isinstance(body, bytes | str):
        return body
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(endpoint, "body", f"not valid JSON ({exc})") from exc


def _object(value: object, endpoint: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedResponse(endpoint, path, f"expected an object, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _integer(value: object, endpoint: str, path: str) -> int | None:
    """An int or None; integral floats are tolerated (JSON has one number type)."""
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int subclass; true is not a price
        raise MalformedResponse(endpoint, path, "expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise MalformedResponse(endpoint, path, f"expected an integer, got {_kind(value)}")


MAX_ITEM_ID = 2_147_483_647
"""Item ids are stored as ``integer``; a larger id is refused per row, not per batch."""


def _item_id(key: object, endpoint: str, path: str) -> int:
    text = str(key)
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
    if isinstance(key, bool) or not (text.isascii() and text.isdigit()):
        raise MalformedResponse(endpoint, path, f"item id {text[:40]!r} is not a number")
    return int(text)


def _check_id(item_id: int) -> int:
    if not 0 <= item_id <= MAX_ITEM_ID:
        raise _OutOfRange("id", item_id, f"item id outside [0, {MAX_ITEM_ID}]")
    return item_id


def _price(value: int | None, name: str) -> int | None:
    if value is not None and not 0 <= value <= MAX_PRICE:
        raise _OutOfRange(name, value, f"outside [0, {MAX_PRICE}]")
    return value


def _volume(value: int | None, name: str) -> int:
    if value is None:
        return 0
    if not 0 <= value <= MAX_VOLUME:
        raise _OutOfRange(name, value, "negative" if value < 0 else "implausibly large")
    return value


def _time(value: int | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not 0 <= value <= MAX_EPOCH:
        raise _OutOfRange(name, value, "not a plausible Unix time")
    return datetime.fromtimestamp(value, UTC)


def _reject(endpoint: str, item_id: int | None, exc: _OutOfRange) -> Rejection:
    return Rejection(endpoint, item_id, exc.name, str(exc.value)[:40], exc.reason)


def _data_object(body: bytes | str | object, endpoint: str) -> tuple[Mapping[str, Any],
                                                                     Mapping[str, Any]]:
    doc = _object(load_json(body, endpoint), endpoint, "$")
    if "data" not in doc:
        raise MalformedResponse(endpoint, "data", "missing")
    return doc, _object(doc["data"], endpoint, "data")


def parse_latest(body: bytes | str | object, endpoint: str = "/latest") -> Parsed[LatestPrice]:
    """Parse ``/latest``: ``{"data": {"<id>": {"high", "highTime", "low", "lowTime"}}}``.

    Raises:
        MalformedResponse: on invalid JSON or a value of the wrong type.
    """
    _, data = _data_object(body, endpoint)
    rows: list[LatestPrice] = []
    rejected: list[Rejection] = []
    for key, raw in data.items():
        path = f"data.{key}"
        item_id = _item_id(key, endpoint, path)
        obj = _object(raw, endpoint, path)
        values = {name: _integer(obj.get(name), endpoint, f"{path}.{name}")
                  for name in ("high", "highTime", "low", "lowTime")}
        try:
            rows.append(LatestPrice(
                item_id=_check_id(item_id),
                high=_price(values["high"], "high"),
                high_time=_time(values["highTime"], "highTime"),
                low=_price(values["low"], "low"),
                low_time=_time(values["lowTime"], "lowTime"),
            ))
        except _OutOfRange as exc:
            rejected.append(_reject(endpoint, item_id, exc))
    rows.sort(key=lambda r: r.item_id)
    return Parsed(rows, rejected)


_BLOCK_FIELDS = ("avgHighPrice", "highPriceVolume", "avgLowPrice", "lowPriceVolume")


def _price_block(obj: Mapping[str, Any], item_id: int, ts: datetime, endpoint: str,
                 path: str) -> PriceBlock:
    v = {name: _integer(obj.get(name), endpoint, f"{path}.{name}") for name in _BLOCK_FIELDS}
    return PriceBlock(
        item_id=item_id,
        timestamp=ts,
        avg_high_price=_price(v["avgHighPrice"], "avgHighPrice"),
        high_price_volume=_volume(v["highPriceVolume"], "highPriceVolume"),
        avg_low_price=_price(v["avgLowPrice"], "avgLowPrice"),
        low_price_volume=_volume(v["lowPriceVolume"], "lowPriceVolume"),
    )


def parse_snapshot(body: bytes | str | object, endpoint: str = "/5m",
                   expected_timestamp: int | None = None) -> Snapshot:
    """Parse ``/5m`` or ``/1h``: ``{"data": {"<id>": {...}}, "timestamp": <block start>}``.

    Args:
        body: the response body or its decoded JSON.
        endpoint: ``/5m`` or ``/1h``, used in error messages.
        expected_timestamp: the block that was asked for; used when the body has no
            timestamp, and a body for a different block is refused.

    Raises:
        MalformedResponse: on invalid JSON, a wrong type, or a missing/mismatched timestamp.
    """
    doc, data = _data_object(body, endpoint)
    ts_value = _integer(doc.get("timestamp"), endpoint, "timestamp")
    if ts_value is None:
        if expected_timestamp is None:
            raise MalformedResponse(endpoint, "timestamp", "missing")
        ts_value = expected_timestamp
    elif expected_timestamp is not None and ts_value != expected_timestamp:
        raise MalformedResponse(endpoint, "timestamp",
                                f"asked for block {expected_timestamp}, got {ts_value}")
    if not 0 <= ts_value <= MAX_EPOCH:
        raise MalformedResponse(endpoint, "timestamp", f"{ts_value} is not a Unix time")
    ts = datetime.fromtimestamp(ts_value, UTC)
    rows: list[PriceBlock] = []
    rejected: list[Rejection] = []
    for key, raw in data.items():
        path = f"data.{key}"
        item_id = _item_id(key, endpoint, path)
        obj = _object(raw, endpoint, path)
        try:
            rows.append(_price_block(obj, _check_id(item_id), ts, endpoint, path))
        except _OutOfRange as exc:
            rejected.append(_reject(endpoint, item_id, exc))
    rows.sort(key=lambda r: r.item_id)
    return Snapshot(ts, tuple(rows), tuple(rejected))


def parse_timeseries(body: bytes | str | object, item_id: int | None = None,
                     endpoint: str = "/timeseries") -> Parsed[PriceBlock]:
    """Parse ``/timeseries``: ``{"data": [{"timestamp", "avgHighPrice", ...}], "itemId"}``.

    Raises:
        MalformedResponse: on invalid JSON, a wrong type or a row without a timestamp.
    """
    doc = _object(load_json(body, endpoint), endpoint, "$")
    data = doc.get("data")
    if not isinstance(data, list):
        raise MalformedResponse(endpoint, "data", f"expected a list, got {_kind(data)}")
    body_id = _integer(doc.get("itemId"), endpoint, "itemId")
    if item_id is not None and body_id is not None and body_id != item_id:
        raise MalformedResponse(endpoint, "itemId", f"asked for item {item_id}, got {body_id}")
    the_id = item_id if item_id is not None else body_id
    if the_id is None:
        raise MalformedResponse(endpoint, "itemId", "missing")
    if not 0 <= the_id <= MAX_ITEM_ID:
        raise MalformedResponse(endpoint, "itemId", f"{the_id} is not an item id")
    rows: list[PriceBlock] = []
    rejected: list[Rejection] = []
    for i, raw in enumerate(data):
        path = f"data[{i}]"
        obj = _object(raw, endpoint, path)
        ts_value = _integer(obj.get("timestamp"), endpoint, f"{path}.timestamp")
        if ts_value is None:
            raise MalformedResponse(endpoint, f"{path}.timestamp", "missing")
        try:
            ts = _time(ts_value, "timestamp")
            assert ts is not None
            rows.append(_price_block(obj, the_id, ts, endpoint, path))
        except _OutOfRange as exc:
            rejected.append(_reject(endpoint, the_id, exc))
    rows.sort(key=lambda r: r.timestamp)
    return Parsed(rows, rejected)


def _optional_str(obj: Mapping[str, Any], name: str, endpoint: str, path: str) -> str | None:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise MalformedResponse(endpoint, f"{path}.{name}", f"expected a string, got {_kind(value)}")


def parse_mapping(body: bytes | str | object, endpoint: str = "/mapping") -> Parsed[ItemMapping]:
    """Parse ``/mapping``: a JSON array of item objects; ``lowalch``/``highalch``/``limit``
    may be absent.

    Raises:
        MalformedResponse: on invalid JSON, a wrong type, or an item without id or name.
    """
    doc = load_json(body, endpoint)
    if not isinstance(doc, list):
        raise MalformedResponse(endpoint, "$", f"expected a list, got {_kind(doc)}")
    rows: list[ItemMapping] = []
    rejected: list[Rejection] = []
    for i, raw in enumerate(doc):
        path = f"[{i}]"
        obj = _object(raw, endpoint, path)
        item_id = _integer(obj.get("id"), endpoint, f"{path}.id")
        name = _optional_str(obj, "name", endpoint, path)
        if item_id is None or name is None:
            raise MalformedResponse(endpoint, f"{path}.{'id' if item_id is None else 'name'}",
                                    "missing")
        members = obj.get("members", False)
        if not isinstance(members, bool):
            raise MalformedResponse(endpoint, f"{path}.members",
                                    f"expected a boolean, got {_kind(members)}")
        ints = {k: _integer(obj.get(k), endpoint, f"{path}.{k}")
                for k in ("value", "lowalch", "highalch", "limit")}
        try:
            rows.append(ItemMapping(
                item_id=_check_id(item_id),
                name=name,
                examine=_optional_str(obj, "examine", endpoint, path),
                members=members,
                value=_price(ints["value"], "value"),
                lowalch=_price(ints["lowalch"], "lowalch"),
                highalch=_price(ints["highalch"], "highalch"),
                limit=_volume(ints["limit"], "limit") if ints["limit"] is not None else None,
                icon=_optional_str(obj, "icon", endpoint, path),
            ))
        except _OutOfRange as exc:
            rejected.append(_reject(endpoint, item_id, exc))
    rows.sort(key=lambda r: r.item_id)
    return Parsed(rows, rejected)
