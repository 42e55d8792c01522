"""The simulator answers like the real OSRS Wiki prices API, fact by fact.

Each test names the facts it checks; the figures are those measured on saved real payloads
(docs/operations-reference.md, "The OSRS Wiki prices API"). The simulator runs with its
default catalogue (4,300 items), over HTTP, as collectors see it.
"""

from __future__ import annotations

import http.client
import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gept.market.simulator import SimulatorServer

NOW = 1767225600 + 1234  # 2026-01-01T00:20:34Z, inside an hour and a 5-minute block
AGENT = {"User-Agent": "gept-tests/0.1 (ops@example.org)"}
BLOCK_KEYS = ["avgHighPrice", "highPriceVolume", "avgLowPrice", "lowPriceVolume"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(seed=3) as server:
        server.clock.set(NOW)
        yield server


@pytest.fixture(scope="module")
def api(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url + "/api/v1/osrs", headers=AGENT, timeout=30) as client:
        yield client


def doc(api: httpx.Client, path: str) -> Any:
    resp = api.get(path)
    assert resp.status_code == 200, resp.text
    return json.loads(resp.content)


@pytest.fixture(scope="module")
def mapping(api: httpx.Client) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = doc(api, "/mapping")
    return rows


def test_catalogue_has_the_real_size_and_fields(mapping: list[dict[str, Any]]) -> None:
    assert 3_700 <= len(mapping) <= 4_400
    names = [m["name"] for m in mapping]
    assert names == sorted(names)  # sorted by name, not by id
    assert len(set(names)) == len(names)
    assert sum(not n.isascii() for n in names) == 2  # "Chichilihui rosé", "Imperial rosé"
    assert all(isinstance(m["examine"], str) and isinstance(m["icon"], str) for m in mapping)
    assert not any("_" in m["icon"] for m in mapping)  # "3rd age amulet.png": spaces
    assert any(m["icon"].endswith(" 5.png") for m in mapping)
    assert max(m["value"] for m in mapping) <= 16_000_000  # the store value, not the GE's
    assert 20 <= sum(m["value"] == 0 for m in mapping) <= 100  # real: 53
    assert sum(m.get("limit") == 0 for m in mapping) >= 1  # real: 2
    assert 200 <= sum("limit" not in m for m in mapping) <= 450  # real: 334
    no_alch = [m for m in mapping if "highalch" not in m]
    assert 8 <= len(no_alch) <= 40  # real: 21
    assert any("limit" not in m for m in no_alch)  # real: 18 with neither
    short = next(m for m in mapping if "limit" not in m and "highalch" in m)
    assert list(short)[:3] == ["highalch", "members", "name"]  # the key order changes
    alch = [m for m in mapping if "highalch" in m]
    rule = sum(m["highalch"] == m["value"] * 3 // 5 and m["lowalch"] == m["value"] * 2 // 5
               for m in alch) / len(alch)
    assert 0.8 < rule < 0.92  # real: about 86 %


def test_blocks_list_only_traded_items(api: httpx.Client,
                                       mapping: list[dict[str, Any]]) -> None:
    """5m holds 35-38 % of items, 1h 62-75 %; never a both-null entry; null avg, 0 volume."""
    n = len(mapping)
    five = [doc(api, f"/5m?timestamp={NOW - NOW % 300 - 300 * k}") for k in range(1, 13, 3)]
    hours = [doc(api, f"/1h?timestamp={NOW - NOW % 3600 - 3600 * k}") for k in range(1, 4)]
    for body in five:
        assert 0.30 <= len(body["data"]) / n <= 0.45, len(body["data"]) / n
    for body in hours:
        assert 0.58 <= len(body["data"]) / n <= 0.78, len(body["data"]) / n
    for body in [*five, *hours, doc(api, "/24h")]:
        assert list(body) == ["data", "timestamp"]
        assert isinstance(body["timestamp"], int)
        assert body["timestamp"] % 300 == 0
        for entry in body["data"].values():
            assert list(entry) == BLOCK_KEYS
            assert entry["avgHighPrice"] is not None or entry["avgLowPrice"] is not None
            for price, volume in (("avgHighPrice", "highPriceVolume"),
                                  ("avgLowPrice", "lowPriceVolume")):
                assert (entry[price] is None) == (entry[volume] == 0)
                assert all(isinstance(entry[k], int) for k in (price, volume)
                           if entry[k] is not None)


def test_hourly_block_during_hour_h_is_h_minus_one(api: httpx.Client) -> None:
    assert doc(api, "/1h")["timestamp"] == NOW - NOW % 3600 - 3600
    assert doc(api, "/5m")["timestamp"] == NOW - NOW % 300 - 300


def test_volumes_stay_within_the_real_maxima(api: httpx.Client) -> None:
    """Largest real volumes: 1.38M per 5m, 11.8M per 1h, 87.8M per 24h."""
    def top(body: dict[str, Any]) -> int:
        return int(max(max(e["highPriceVolume"], e["lowPriceVolume"])
                       for e in body["data"].values()))

    five = max(top(doc(api, f"/5m?timestamp={NOW - NOW % 300 - 300 * k}"))
               for k in range(1, 25))
    hour = max(top(doc(api, f"/1h?timestamp={NOW - NOW % 3600 - 3600 * k}"))
               for k in range(1, 25))
    day = top(doc(api, "/24h"))
    assert 100_000 < five <= 1_380_000
    assert five < hour <= 11_800_000
    assert hour < day <= 87_800_000


def test_latest_is_like_the_real_one(api: httpx.Client, mapping: list[dict[str, Any]]) -> None:
    body = doc(api, "/latest")
    assert list(body) == ["data"]  # no top-level timestamp
    data = body["data"]
    entries = list(data.values())
    assert not [e for e in entries if e["high"] is None and e["low"] is None]
    for e in entries:
        assert (e["high"] is None) == (e["highTime"] is None)
        assert (e["low"] is None) == (e["lowTime"] is None)
    assert any(e["high"] is None for e in entries)
    assert any(e["low"] is None for e in entries)
    pinned = sum(2147483647 in (e["high"], e["low"]) for e in entries)
    assert 2 <= pinned <= 6  # real: 3-5 per dump
    both = [e for e in entries if e["high"] is not None and e["low"] is not None]
    crossed = sum(e["low"] > e["high"] for e in both) / len(both)
    assert 0.10 < crossed < 0.25  # real: about 17 %
    same_time = sum(e["highTime"] == e["lowTime"] for e in both) / len(both)
    assert same_time < 0.05  # real: 1 %
    ages = sorted(NOW - t for e in entries for t in (e["highTime"], e["lowTime"])
                  if t is not None)
    p90 = ages[int(0.9 * len(ages))]
    assert 12 * 3600 < p90 < 60 * 3600  # real: about 31 h
    assert ages[-1] > 365 * 86400  # real: up to 1,497 days
    listed = {m["id"] for m in mapping}
    latest = {int(k) for k in data}
    assert 5 <= len(latest - listed) <= 30  # real: 16 ids /mapping does not list
    assert 60 <= len(listed - latest) <= 250  # real: 129 never-traded items left out


def test_timeseries_has_gaps_and_the_real_key_order(api: httpx.Client,
                                                    mapping: list[dict[str, Any]]) -> None:
    lengths, gaps = [], 0
    for m in mapping[:40]:
        body = doc(api, f"/timeseries?timestep=5m&id={m['id']}")
        assert list(body) == ["data", "itemId"]
        points = body["data"]
        lengths.append(len(points))
        for p in points:
            assert list(p) == ["timestamp", "avgHighPrice", "avgLowPrice", "highPriceVolume",
                               "lowPriceVolume"]
            assert p["avgHighPrice"] is not None or p["avgLowPrice"] is not None
        steps = {b["timestamp"] - a["timestamp"] for a, b in itertools.pairwise(points)}
        gaps += any(s > 300 for s in steps)
    assert max(lengths) == 300  # liquid items: 300 points (the docs say "up to 365")
    assert gaps > 0


def test_volumes_endpoint(api: httpx.Client, mapping: list[dict[str, Any]]) -> None:
    body = doc(api, "/volumes")
    assert list(body) == ["timestamp", "data"]
    assert body["timestamp"] % 300 != 0  # not block-aligned
    assert len(body["data"]) > len(mapping) // 2
    assert all(isinstance(v, int) and v > 0 for v in body["data"].values())


@pytest.mark.parametrize("agent", ["python-requests/2.31.0", "curl/8.5.0", "Java/17.0.2",
                                   "Python-urllib/3.11", "python-httpx/0.27.0"])
def test_default_user_agents_get_403(sim: SimulatorServer, agent: str) -> None:
    for path in ("/latest", "/5m", "/mapping"):
        resp = httpx.get(sim.url + path, headers={"User-Agent": agent}, timeout=30)
        assert resp.status_code == 403, (agent, path)
        assert "User-Agent" in resp.json()["error"]
    assert httpx.get(sim.url + "/1h", headers=AGENT, timeout=30).status_code == 200


def test_no_user_agent_gets_403(sim: SimulatorServer) -> None:
    parts = urlsplit(sim.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.putrequest("GET", "/latest", skip_accept_encoding=True)
    conn.endheaders()  # http.client sends no User-Agent unless told to
    assert conn.getresponse().status == 403
    conn.close()
