"""Response bodies in the real API's shapes, plus the deliberately wrong variants.

Pure functions from typed rows to bytes, so the shapes can be tested without a server and
the same seed gives the same bytes.

Example:
    >>> from datetime import UTC, datetime
    >>> from gept.market.models import PriceBlock, Snapshot
    >>> ts = datetime(2026, 1, 1, tzinfo=UTC)
    >>> snapshot_body(Snapshot(ts, (PriceBlock(2, ts, None, 0, 5, 3),)))
    b'{"data":{"2":{"avgHighPrice":null,"highPriceVolume":0,"avgLowPrice":5,"lowPriceVolume":3}},"timestamp":1767225600}'
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from typing import Any

from gept.market.models import ItemMapping, LatestPrice, PriceBlock, Snapshot

WRONG_TYPE_EVERY = 7
"""With the ``wrong-types`` fault, the first row and every 7th after it carry a string."""


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _epoch(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp())


def _spoil(obj: dict[str, Any], key: str, index: int, wrong_types: bool) -> dict[str, Any]:
    """Turn ``obj[key]`` into a string on every ``WRONG_TYPE_EVERY``-th row."""
    if wrong_types and index % WRONG_TYPE_EVERY == 0:
        value = obj.get(key)
        obj[key] = "n/a" if value is None else str(value)
    return obj


def _block_obj(row: PriceBlock) -> dict[str, Any]:
    return {"avgHighPrice": row.avg_high_price, "highPriceVolume": row.high_price_volume,
            "avgLowPrice": row.avg_low_price, "lowPriceVolume": row.low_price_volume}


def snapshot_body(snap: Snapshot, wrong_types: bool = False) -> bytes:
    """``/5m`` and ``/1h``: ``{"data": {"<id>": {...}}, "timestamp": <block start>}``."""
    data = {str(r.item_id): _spoil(_block_obj(r), "avgHighPrice", i, wrong_types)
            for i, r in enumerate(snap.rows)}
    return _dump({"data": data, "timestamp": _epoch(snap.timestamp)})


def latest_body(rows: Sequence[LatestPrice], wrong_types: bool = False) -> bytes:
    """``/latest``: ``{"data": {"<id>": {"high", "highTime", "low", "lowTime"}}}``."""
    data = {str(r.item_id): _spoil({"high": r.high, "highTime": _epoch(r.high_time),
                                    "low": r.low, "lowTime": _epoch(r.low_time)},
                                   "high", i, wrong_types)
            for i, r in enumerate(rows)}
    return _dump({"data": data})


_SHORT_ORDER = ("highalch", "members", "name", "examine", "id", "value", "icon", "lowalch")
"""The key order of real /mapping entries that lack a key (``limit`` or the alch values)."""


def _mapping_obj(r: ItemMapping) -> dict[str, Any]:
    if r.limit is not None and r.highalch is not None and r.lowalch is not None:
        return {"examine": r.examine, "id": r.item_id, "members": r.members,
                "lowalch": r.lowalch, "limit": r.limit, "value": r.value,
                "highalch": r.highalch, "icon": r.icon, "name": r.name}
    full = {"highalch": r.highalch, "members": r.members, "name": r.name,
            "examine": r.examine, "id": r.item_id, "value": r.value, "icon": r.icon,
            "lowalch": r.lowalch, "limit": r.limit}
    obj = {key: full[key] for key in _SHORT_ORDER if full[key] is not None}
    if r.limit is not None:
        obj["limit"] = r.limit
    return obj


def mapping_body(rows: Sequence[ItemMapping], wrong_types: bool = False) -> bytes:
    """``/mapping``: a JSON array; ``lowalch``, ``highalch`` and ``limit`` absent when unknown."""
    return _dump([_spoil(_mapping_obj(r), "value", i, wrong_types) for i, r in enumerate(rows)])


def volumes_body(volumes: dict[int, int], now: float) -> bytes:
    """``/volumes``: ``{"timestamp": <when computed, not aligned>, "data": {"<id>": n}}``."""
    return _dump({"timestamp": int(now), "data": {str(k): v for k, v in volumes.items()}})


def empty_block_body(ts: int) -> bytes:
    """A block that is not complete yet: no data, in the same spacing as every other body."""
    return _dump({"data": {}, "timestamp": ts})


def timeseries_body(rows: Sequence[PriceBlock], item_id: int, wrong_types: bool = False
                    ) -> bytes:
    """``/timeseries``: ``{"data": [{"timestamp", "avgHighPrice", ...}], "itemId": id}``.

    The point keys come in the real API's order, both prices before both volumes.
    """
    data = [_spoil({"timestamp": _epoch(r.timestamp), "avgHighPrice": r.avg_high_price,
                    "avgLowPrice": r.avg_low_price, "highPriceVolume": r.high_price_volume,
                    "lowPriceVolume": r.low_price_volume}, "avgLowPrice", i, wrong_types)
            for i, r in enumerate(rows)]
    return _dump({"data": data, "itemId": item_id})


def error_body(message: str) -> bytes:
    """The JSON error body the simulator sends with 4xx/5xx."""
    return _dump({"error": message})


def malformed(body: bytes) -> bytes:
    """A truncated body: the first half of a JSON document is never valid JSON."""
    return body[: max(1, len(body) // 2)]


def _hash01(*parts: int) -> float:
    """A deterministic number in [0, 1) from integers (for the news and player pages)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = ((x ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return (x >> 11) / float(1 << 53)


NEWS_BASE = "https://secure.runescape.com/m=news"
"""Article links as the real feed writes them (never fetched by the simulator's clients)."""
_TOPICS = ("Varlamore", "Leagues", "Deadman", "Poll", "Clue Scroll", "Grand Exchange",
           "Wilderness", "Slayer", "Quest", "Raids")
_CATEGORIES = ("Game Updates", "Community", "Future Updates", "Dev Blogs")


def news_rss(now: float, seed: int, items: int = 10) -> bytes:
    """An RSS 2.0 feed shaped like the official OSRS news: one article on most days.

    The newest article is from the day of ``now``, so advancing the clock adds articles.
    """
    day = int(now // 86400)
    entries: list[str] = []
    d = day
    while len(entries) < items and d > day - 10 * items:
        if _hash01(seed, d, 1) < 0.7:
            topic = _TOPICS[int(_hash01(seed, d, 2) * len(_TOPICS))]
            category = _CATEGORIES[int(_hash01(seed, d, 3) * len(_CATEGORIES))]
            published = datetime.fromtimestamp(d * 86400 + 11 * 3600, UTC)
            slug = f"{topic.lower().replace(' ', '-')}-update--fixes-{d}"
            link = f"{NEWS_BASE}/{slug}?oldschool=1"  # the real guid is the link
            entries.append(
                "<item>"
                f"<title>{escape(topic)} update &amp; fixes ({published:%d %b %Y})</title>"
                f"<description>{escape(f'<p>This week brings {topic} changes.</p>')}"
                "</description>"
                f"<category>{escape(category)}</category>"
                f"<link>{link}</link><guid isPermaLink=\"true\">{link}</guid>"
                f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
                f"<enclosure url=\"{NEWS_BASE}/img/{slug}.jpg\" type=\"image/jpeg\" "
                "length=\"0\"/>"
                "</item>")
        d -= 1
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<rss version=\"2.0\"><channel><title>Old School RuneScape Recent News</title>"
            f"<link>{NEWS_BASE}/list?oldschool=1</link>"
            "<description>The latest news from Old School RuneScape</description>"
            + "".join(entries) + "</channel></rss>").encode()


def player_count(now: float, seed: int) -> int:
    """Players online at ``now``: a daily rhythm around 100k with hashed noise."""
    minute = int(now // 60)
    phase = (now % 86400) / 86400.0
    base = 100_000 + 35_000 * math.sin(2 * math.pi * (phase - 0.35))
    return int(base * (0.97 + 0.06 * _hash01(seed, minute)))


def players_html(now: float, seed: int) -> bytes:
    """An HTML page containing the sentence the player-count collector looks for."""
    count = player_count(now, seed)
    return ("<!DOCTYPE html><html><head><title>Old School RuneScape</title></head><body>"
            f"<p class='player-count'>There are currently {count:,} people playing!</p>"
            "</body></html>").encode()
