"""Pure parsers for the two non-JSON sources: the news RSS feed and the player-count page.

Example:
    >>> parse_player_count("<p>There are currently 1,234 people playing!</p>")
    1234
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gept.market.errors import MalformedResponse, ResponseTooLarge
from gept.market.models import NewsItem

MAX_XML_BYTES = 4 * 1024 * 1024
"""Largest RSS body we parse. Real feeds are tens of kilobytes."""

PLAYER_COUNT_RE = re.compile(r"There are currently ([\d,]+) people playing!")


def _text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    text = child.text.strip()
    return text or None


def parse_news(body: bytes, endpoint: str = "news", max_bytes: int = MAX_XML_BYTES
               ) -> list[NewsItem]:
    """Parse an RSS 2.0 feed into news items (newest first, as the feed lists them).

    The stdlib XML parser is used with two guards instead of defusedxml: a size limit and a
    refusal of any DTD (entity-expansion attacks need one; RSS never does).

    Raises:
        ResponseTooLarge: when the body exceeds ``max_bytes``.
        MalformedResponse: when the body is not RSS, or declares a DTD.
    """
    if len(body) > max_bytes:
        raise ResponseTooLarge(endpoint, "body", f"{len(body)} bytes > limit {max_bytes}")
    head = body[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in body.lower():
        raise MalformedResponse(endpoint, "body", "XML with a DTD is refused")
    try:
        root = ET.fromstring(body)  # noqa: S314 - guarded above: size limit and no DTD
    except (ET.ParseError, LookupError, ValueError) as exc:
        # LookupError: an XML declaration naming an encoding Python does not know.
        raise MalformedResponse(endpoint, "body", f"not valid XML ({exc})") from exc
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise MalformedResponse(endpoint, "rss.channel", f"not an RSS feed (root <{root.tag}>)")
    items: list[NewsItem] = []
    for i, element in enumerate(channel.findall("item")):
        link = _text(element, "link")
        if link is not None and not link.startswith(("http://", "https://")):
            link = None  # only web links are stored; javascript: and friends are dropped
        guid = _text(element, "guid") or link
        title = _text(element, "title")
        if guid is None or title is None:
            raise MalformedResponse(endpoint, f"item[{i}].{'guid' if guid is None else 'title'}",
                                    "missing")
        items.append(NewsItem(
            guid=guid,
            title=title,
            link=link,
            description=_text(element, "description"),
            category=_text(element, "category"),
            pub_date=_rfc822(_text(element, "pubDate")),
        ))
    return items


def _rfc822(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None  # an unreadable date loses the date, not the article
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_player_count(body: bytes | str, endpoint: str = "players") -> int:
    """Find "There are currently N people playing!" in a page and return N.

    Example:
        >>> parse_player_count("<p>There are currently 123,456 people playing!</p>")
        123456

    Raises:
        MalformedResponse: when the sentence is absent.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    match = PLAYER_COUNT_RE.search(text)
    if match is None:
        raise MalformedResponse(endpoint, "player_count",
                                "the page has no 'There are currently N people playing!'")
    return int(match.group(1).replace(",", ""))
