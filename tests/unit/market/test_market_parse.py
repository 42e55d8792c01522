"""The pure parsers on recorded-shape fixtures: nulls, max-int, wrong types, malformed bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gept.core.errors import UpstreamError
from gept.market import parse
from gept.market.errors import MalformedResponse, ResponseTooLarge
from gept.market.models import MAX_PRICE

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wiki"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_5m_rows_keep_nulls_max_int_and_block_timestamp() -> None:
    snap = parse.parse_snapshot(body("5m.json"), "/5m")
    by_id = {r.item_id: r for r in snap.rows}
    assert snap.timestamp == datetime(2025, 12, 31, 23, 55, tzinfo=UTC)  # 1767225300
    assert sorted(by_id) == [2, 4151, 20997, 25849, 30000]
    assert by_id[20997].avg_high_price == MAX_PRICE
    assert by_id[20997].avg_low_price is None
    assert by_id[20997].low_price_volume == 0
    assert by_id[30000].avg_high_price is None
    assert by_id[30000].avg_low_price is None
    assert all(r.timestamp == snap.timestamp for r in snap.rows)
    assert snap.rejected == ()


def test_1h_has_the_same_shape() -> None:
    snap = parse.parse_snapshot(body("1h.json"), "/1h", expected_timestamp=1767222000)
    assert [r.item_id for r in snap.rows] == [2, 4151]
    assert snap.rows[0].high_price_volume == 601234


def test_out_of_range_rows_are_rejected_and_counted_not_fatal() -> None:
    snap = parse.parse_snapshot(body("5m_out_of_range.json"), "/5m")
    assert [r.item_id for r in snap.rows] == [2, 4151]
    rejected = {r.item_id: r for r in snap.rejected}
    assert set(rejected) == {11, 12, 13}
    assert rejected[11].field == "avgHighPrice"
    assert rejected[12].value == str(MAX_PRICE + 1)
    assert rejected[13].field == "highPriceVolume"
    assert rejected[13].reason == "negative"


def test_a_string_where_an_int_belongs_names_endpoint_and_field() -> None:
    with pytest.raises(MalformedResponse) as info:
        parse.parse_snapshot(body("5m_wrong_type.json"), "/5m")
    assert info.value.field == "data.4151.avgHighPrice"
    assert "/5m" in info.value.message
    assert "str" in info.value.message
    assert isinstance(info.value, UpstreamError)


def test_truncated_json_is_malformed() -> None:
    with pytest.raises(MalformedResponse) as info:
        parse.parse_snapshot(body("5m_malformed.json"), "/5m")
    assert info.value.field == "body"


@pytest.mark.parametrize(("doc", "field"), [
    ({"timestamp": 1767225300}, "data"),
    ({"data": [], "timestamp": 1767225300}, "data"),
    ({"data": {"2": [1, 2]}, "timestamp": 1767225300}, "data.2"),
    ({"data": {"2": {"avgHighPrice": True}}, "timestamp": 1767225300}, "data.2.avgHighPrice"),
    ({"data": {"2": {"avgHighPrice": 1.5}}, "timestamp": 1767225300}, "data.2.avgHighPrice"),
    ({"data": {}}, "timestamp"),
    ({"data": {}, "timestamp": "soon"}, "timestamp"),
    ([], "$"),
])
def test_structural_errors_name_the_field(doc: object, field: str) -> None:
    with pytest.raises(MalformedResponse) as info:
        parse.parse_snapshot(doc, "/5m")
    assert info.value.field == field


def test_snapshot_for_another_block_is_refused_and_missing_timestamp_uses_the_asked_one(
) -> None:
    with pytest.raises(MalformedResponse, match="asked for block 1767225600"):
        parse.parse_snapshot(body("5m.json"), "/5m", expected_timestamp=1767225600)
    snap = parse.parse_snapshot({"data": {}}, "/5m", expected_timestamp=1767225600)
    assert snap.timestamp == datetime.fromtimestamp(1767225600, UTC)
    assert snap.rows == ()


def test_integral_floats_and_null_volumes_are_tolerated() -> None:
    snap = parse.parse_snapshot({"data": {"2": {"avgHighPrice": 5.0, "highPriceVolume": None}},
                                 "timestamp": 300}, "/5m")
    assert snap.rows[0].avg_high_price == 5
    assert snap.rows[0].high_price_volume == 0


def test_latest_converts_ids_and_times_and_keeps_nulls() -> None:
    rows = {r.item_id: r for r in parse.parse_latest(body("latest.json")).rows}
    assert rows[4151].high == 1527000
    assert rows[4151].high_time == datetime.fromtimestamp(1767225480, UTC)
    assert rows[20997].high == MAX_PRICE
    assert rows[25849].high is None
    assert rows[25849].high_time is None
    assert rows[25849].low == 9
    assert rows[30000].low_time is None


def test_latest_with_a_non_numeric_id_is_malformed() -> None:
    with pytest.raises(MalformedResponse) as info:
        parse.parse_latest(body("latest_bad_id.json"))
    assert info.value.field == "data.abc"


def test_mapping_optional_fields_may_be_absent() -> None:
    parsed = parse.parse_mapping(body("mapping.json"))
    rows = {r.item_id: r for r in parsed.rows}
    assert [r.item_id for r in parsed.rows] == [2, 1777, 4151, 20997]
    assert rows[2].limit is None
    assert rows[2].lowalch is None
    assert rows[2].highalch is None
    assert rows[4151].limit == 70
    assert rows[4151].members is True
    assert rows[1777].name == "Bow string"
    assert rows[1777].icon == "Bow string.png"


def test_mapping_wrong_types_are_malformed() -> None:
    with pytest.raises(MalformedResponse) as info:
        parse.parse_mapping([{"id": 2, "name": "x", "members": "yes"}])
    assert info.value.field == "[0].members"
    with pytest.raises(MalformedResponse) as info:
        parse.parse_mapping([{"id": "2", "name": "x"}])
    assert info.value.field == "[0].id"
    with pytest.raises(MalformedResponse):
        parse.parse_mapping({"data": []})


def test_timeseries_rows_are_ordered_and_typed() -> None:
    parsed = parse.parse_timeseries(body("timeseries.json"), 4151)
    assert [r.timestamp.timestamp() for r in parsed.rows] == [1767224700, 1767225000,
                                                              1767225300]
    assert parsed.rows[1].avg_high_price is None
    assert parsed.rows[1].high_price_volume == 0
    assert {r.item_id for r in parsed.rows} == {4151}
    with pytest.raises(MalformedResponse, match="asked for item 2"):
        parse.parse_timeseries(body("timeseries.json"), 2)
    with pytest.raises(MalformedResponse) as info:
        parse.parse_timeseries({"data": [{"avgHighPrice": 1}], "itemId": 2})
    assert info.value.field == "data[0].timestamp"


def test_news_rss_items_with_fallbacks() -> None:
    items = parse.parse_news(body("news.rss"))
    assert [i.title for i in items] == ["Varlamore: Part Two & more", "Poll 82 results",
                                        "Sneaky link"]
    first, second, third = items
    assert first.pub_date == datetime(2024, 7, 24, 11, 30, tzinfo=UTC)
    assert first.description == "This week we bring you <b>new content</b>."
    assert first.category == "Game Updates"
    assert second.guid == second.link  # no <guid>: the link stands in
    assert second.pub_date is None  # an unreadable date loses the date, not the article
    assert third.link is None
    assert third.guid == "sneaky-1"


def test_news_refuses_dtds_and_huge_bodies_and_non_rss() -> None:
    with pytest.raises(MalformedResponse, match="DTD"):
        parse.parse_news(body("news_entity.rss"))
    with pytest.raises(ResponseTooLarge):
        parse.parse_news(b"<rss>" + b" " * 2048 + b"</rss>", max_bytes=1024)
    with pytest.raises(MalformedResponse, match="not an RSS feed"):
        parse.parse_news(b"<html><body/></html>")
    with pytest.raises(MalformedResponse, match="not valid XML"):
        parse.parse_news(b"<rss><channel>")


def test_player_count_from_the_page() -> None:
    assert parse.parse_player_count(body("players.html")) == 123456
    with pytest.raises(MalformedResponse) as info:
        parse.parse_player_count(b"<html>maintenance</html>")
    assert info.value.field == "player_count"


@pytest.mark.parametrize("key", ["\u00b2", "\u0661", "-3", "1.0", ""])
def test_item_ids_must_be_plain_ascii_numbers(key: str) -> None:
    with pytest.raises(MalformedResponse) as info:
        parse.parse_snapshot({"data": {key: {}}, "timestamp": 300}, "/5m")
    assert info.value.field == f"data.{key}"


def test_an_item_id_beyond_int32_is_rejected_per_row() -> None:
    snap = parse.parse_snapshot({"data": {"2": {}, "99999999999": {}}, "timestamp": 300})
    assert [r.item_id for r in snap.rows] == [2]
    assert [(r.item_id, r.field) for r in snap.rejected] == [(99999999999, "id")]
    latest = parse.parse_latest({"data": {"2147483648": {"high": 1}}})
    assert latest.rows == []
    assert len(latest.rejected) == 1


def test_an_unknown_xml_encoding_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedResponse, match="not valid XML"):
        parse.parse_news(b'<?xml version="1.0" encoding="bogus"?><rss/>')
