"""Pure parts of the database layer: row validation, wiki URLs, partition naming."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gept.db import partitions
from gept.db.writer import (
    WriteResult,
    valid_block,
    valid_item,
    valid_latest,
    wiki_url,
    write_price_blocks,
)
from gept.market.models import MAX_PRICE, ItemMapping, LatestPrice, PriceBlock

T = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("row", "ok"), [
    (PriceBlock(1, T, MAX_PRICE, 0, None, 0), True),
    (PriceBlock(1, T, None, 0, None, 0), True),
    (PriceBlock(1, T, MAX_PRICE + 1, 0, None, 0), False),
    (PriceBlock(1, T, 5, -1, None, 0), False),
    (PriceBlock(2**31, T, 5, 1, 5, 1), False),
    (PriceBlock(1, T.replace(tzinfo=None), 5, 1, 5, 1), False),
])
def test_price_rows_outside_the_schema_are_refused(row: PriceBlock, ok: bool) -> None:
    assert valid_block(row) is ok


def test_latest_and_item_validation() -> None:
    assert valid_latest(LatestPrice(1, MAX_PRICE, None, 0, None))
    assert not valid_latest(LatestPrice(1, -1, None, 0, None))
    assert valid_item(ItemMapping(1, "Coins", None, False, None, None, None, None, None))
    assert not valid_item(ItemMapping(1, "  ", None, False, None, None, None, None, None))
    assert not valid_item(ItemMapping(1, "X", None, False, None, None, None, -3, None))


def test_wiki_url_follows_the_wiki_page_naming() -> None:
    assert wiki_url("Abyssal whip") == "https://oldschool.runescape.wiki/w/Abyssal_whip"
    assert wiki_url("Zamorak godsword (or)").endswith("/Zamorak_godsword_(or)")
    assert wiki_url("Tyrannical ring (i)?") .endswith("/Tyrannical_ring_(i)%3F")


def test_write_result_counts_duplicates() -> None:
    assert WriteResult("t", offered=10, written=6, rejected=1).duplicates == 3


def test_only_price_tables_take_price_blocks() -> None:
    with pytest.raises(ValueError, match="price_data_5min"):
        write_price_blocks(None, "items", [])  # type: ignore[arg-type]  # refused before use


def test_partition_names_and_month_rollover() -> None:
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    floor = partitions._floor(december, "month")
    assert partitions.partition_name("price_data_5min", floor, "month") == \
        "price_data_5min_p202612"
    assert partitions._next(floor, "month") == datetime(2027, 1, 1, tzinfo=UTC)
    day = partitions._floor(december, "day")
    assert partitions.partition_name("prices_latest_1m", day, "day") == \
        "prices_latest_1m_p20261231"
