"""The simulator over real HTTP: shapes, determinism, fault control, clock, concurrency."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from gept.market import parse
from gept.market.errors import MalformedResponse
from gept.market.simulator import SimulatorServer

NOW = 1767225600  # 2026-01-01T00:00:00Z


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(items=60, seed=4) as server:
        server.clock.set(NOW)
        yield server


AGENT = {"User-Agent": "gept-tests/0.1 (ops@example.org)"}  # default agents get 403
_HTTP = httpx.Client(timeout=10, headers=AGENT)  # keep-alive: many small requests stay cheap


def get(sim: SimulatorServer, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return _HTTP.get(sim.url + path, headers=headers)


def test_two_servers_with_one_seed_answer_the_same_bytes() -> None:
    bodies = []
    for _ in range(2):
        with SimulatorServer(items=80, seed=9) as server:
            server.clock.set(NOW)
            bodies.append([get(server, p).content for p in
                           ("/5m", "/1h?timestamp=1767218400", "/latest", "/mapping",
                            "/timeseries?timestep=5m&id=7", "/news.rss", "/players")])
    assert bodies[0] == bodies[1]
    with SimulatorServer(items=80, seed=10) as other:
        other.clock.set(NOW)
        assert get(other, "/5m").content != bodies[0][0]


def test_endpoints_have_the_real_shapes(sim: SimulatorServer) -> None:
    snap = parse.parse_snapshot(get(sim, "/5m").content, "/5m")
    assert snap.timestamp.timestamp() == NOW - 300  # the latest complete block
    assert snap == sim.market.block(snap.timestamp)  # the traded items only
    assert 0 < len(snap.rows) < 60
    hourly = parse.parse_snapshot(get(sim, "/api/v1/osrs/1h").content, "/1h")
    assert hourly.timestamp.timestamp() == NOW - 3600
    assert len(snap.rows) < len(hourly.rows)  # more items trade in an hour than in 5 min
    assert parse.parse_latest(get(sim, "/latest").content).rows == sim.market.latest(
        snap.timestamp + timedelta(minutes=5))
    one = parse.parse_latest(get(sim, "/latest?id=7").content).rows
    assert [r.item_id for r in one] == [7] or one == []
    mapping = json.loads(get(sim, "/mapping").content)
    assert isinstance(mapping, list)
    assert {"id", "name", "members", "icon"} <= set(mapping[0])
    item = mapping[0]["id"]
    series = parse.parse_timeseries(get(sim, f"/timeseries?timestep=1h&id={item}").content,
                                    item)
    assert 0 < len(series.rows) <= 300
    assert get(sim, "/news.rss").headers["content-type"].startswith("application/rss+xml")
    assert parse.parse_news(get(sim, "/news.rss").content)
    assert parse.parse_player_count(get(sim, "/players").content) > 10_000


def test_bad_requests_get_400_and_unknown_paths_404(sim: SimulatorServer) -> None:
    assert get(sim, "/5m?timestamp=1767225601").status_code == 400
    assert get(sim, "/timeseries?timestep=2m&id=7").status_code == 400
    assert get(sim, "/timeseries?timestep=5m").status_code == 400
    assert get(sim, "/nope").status_code == 404
    unknown = json.loads(get(sim, "/timeseries?timestep=5m&id=999999").content)
    assert unknown == {"data": [], "itemId": 999999}


def test_clock_controls_now_and_future_blocks_are_empty(sim: SimulatorServer) -> None:
    assert json.loads(get(sim, f"/5m?timestamp={NOW}").content)["data"] == {}
    httpx.post(sim.url + "/_sim/clock", json={"advance": 600})
    assert json.loads(get(sim, "/5m").content)["timestamp"] == NOW + 300
    assert json.loads(get(sim, f"/5m?timestamp={NOW}").content)["data"] != {}
    state = httpx.post(sim.url + "/_sim/clock",
                       json={"now": "2026-02-01T00:00:00+00:00"}).json()
    assert state == {"now": 1769904000.0, "frozen": True}
    assert httpx.delete(sim.url + "/_sim/clock").json()["frozen"] is False


def test_per_request_faults_by_query_and_header(sim: SimulatorServer) -> None:
    r = get(sim, "/5m?fault=429")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    r = get(sim, "/5m", headers={"X-Sim-Fault": "503", "X-Sim-Retry-After": "7"})
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "7"
    r = get(sim, "/5m?fault=429&retry_after=date:120")
    ahead = parsedate_to_datetime(r.headers["Retry-After"]).timestamp() - time.time()
    assert 100 < ahead <= 121
    assert get(sim, "/mapping?fault=500").status_code == 500
    with pytest.raises(MalformedResponse, match="not valid JSON"):
        parse.parse_snapshot(get(sim, "/5m?fault=malformed").content, "/5m")
    with pytest.raises(MalformedResponse, match="expected an integer, got str"):
        parse.parse_snapshot(get(sim, "/5m?fault=wrong-types").content, "/5m")
    with pytest.raises(MalformedResponse):
        parse.parse_latest(get(sim, "/latest", headers={"X-Sim-Fault": "wrong-types"}).content)
    assert get(sim, "/5m?fault=empty").content == b""
    assert get(sim, "/5m?fault=bogus").status_code == 400
    assert get(sim, "/5m").status_code == 200  # one-off: nothing sticks


def test_scripted_faults_apply_in_order_to_matching_paths(sim: SimulatorServer) -> None:
    state = httpx.post(sim.url + "/_sim/faults",
                       json={"next": ["500", {"kind": "429", "retry_after": "3"}],
                             "paths": ["/5m"]}).json()
    assert [f["kind"] for f in state["queue"]] == ["500", "429"]
    assert get(sim, "/latest").status_code == 200  # another path: untouched
    assert get(sim, "/5m").status_code == 500
    r = get(sim, "/5m")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    assert get(sim, "/5m").status_code == 200
    assert httpx.get(sim.url + "/_sim/faults").json()["injected"] == {"500": 1, "429": 1}


def test_fault_rate_and_clear(sim: SimulatorServer) -> None:
    httpx.post(sim.url + "/_sim/faults", json={"rate": 1.0, "kinds": ["502"]})
    assert {get(sim, "/1h").status_code for _ in range(5)} == {502}
    httpx.delete(sim.url + "/_sim/faults")
    assert get(sim, "/1h").status_code == 200
    httpx.post(sim.url + "/_sim/faults", json={"rate": 0.5, "kinds": ["500"]})
    codes = [get(sim, "/mapping").status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35
    assert httpx.post(sim.url + "/_sim/faults", json={"rate": 2}).status_code == 400


def test_stats_count_requests_per_path(sim: SimulatorServer) -> None:
    httpx.delete(sim.url + "/_sim/stats")
    for _ in range(3):
        get(sim, "/5m")
    get(sim, "/mapping?fault=503")
    stats = httpx.get(sim.url + "/_sim/stats").json()
    assert stats["requests"] == {"/5m": 3, "/mapping": 1}
    assert stats["total"] == 4
    assert sum(stats["user_agents"].values()) == 4


def test_fifty_concurrent_requests_all_answered(sim: SimulatorServer) -> None:
    paths = ["/5m", "/latest", "/mapping", "/1h", "/players"] * 10
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(lambda p: get(sim, p).status_code, paths))
    assert codes == [200] * 50


def test_stop_is_prompt_even_while_a_fault_holds_a_request() -> None:
    server = SimulatorServer(items=5, seed=1).start()
    outcome: list[object] = []

    def held() -> None:
        try:
            outcome.append(httpx.get(server.url + "/5m?fault=timeout&delay=30", timeout=60,
                                            headers=AGENT))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=held)
    caller.start()
    time.sleep(0.3)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(10)
    caller.join(10)
    assert not stopper.is_alive()
    assert not caller.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/5m", timeout=2)


def test_next_n_requests_by_count_and_bad_control_bodies(sim: SimulatorServer) -> None:
    httpx.post(sim.url + "/_sim/faults", json={"next": 2, "kind": "429", "paths": ["/1h"]})
    assert [get(sim, "/1h").status_code for _ in range(3)] == [429, 429, 200]
    for bad in ({"next": 1, "kind": "teapot"}, {"next": ["500"], "paths": ["/nowhere"]},
                {"next": "500"}, {"rate": "lots", "kinds": ["500"]}):
        r = httpx.post(sim.url + "/_sim/faults", json=bad)
        assert r.status_code == 400, bad
    assert httpx.post(sim.url + "/_sim/faults", content=b"[1,").status_code == 400
    assert httpx.get(sim.url + "/_sim/faults").json()["queue"] == []


def test_head_probes_and_the_index_are_never_faulted_or_counted(sim: SimulatorServer) -> None:
    httpx.delete(sim.url + "/_sim/stats")
    sim.faults.set_rate(1.0, ["500"])
    head = httpx.head(sim.url + "/5m", headers=AGENT)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 1000
    assert "/5m" in get(sim, "/").json()["endpoints"]
    assert httpx.get(sim.url + "/_sim/stats").json()["total"] == 0
    assert httpx.put(sim.url + "/5m").status_code == 501  # the stdlib refuses unknown verbs


def _liquid_item(sim: SimulatorServer) -> int:
    """An item whose both sides traded in the last minute (so /latest shows a move at once)."""
    rows = parse.parse_latest(get(sim, "/latest").content).rows
    fresh = [r for r in rows if r.high and r.low and r.high_time and r.low_time
             and NOW - r.high_time.timestamp() < 60 and NOW - r.low_time.timestamp() < 60]
    assert fresh, "the seeded market has no liquid item"
    return fresh[0].item_id


def test_a_scripted_move_drops_one_item_on_every_view_and_clears(sim: SimulatorServer) -> None:
    item = _liquid_item(sim)
    before = {p: get(sim, p).content for p in ("/latest", "/5m", "/1h", "/mapping",
                                                f"/timeseries?timestep=5m&id={item}")}
    state = httpx.post(sim.url + "/_sim/moves",
                       json={"item": item, "change": -0.2, "at": NOW - 3600}).json()
    assert state["moves"] == [{"item": item, "change": -0.2, "since": NOW - 3600.0,
                               "until": None}]
    old = {r.item_id: r for r in parse.parse_latest(before["/latest"]).rows}
    new = {r.item_id: r for r in parse.parse_latest(get(sim, "/latest").content).rows}
    old_high, old_low = old[item].high, old[item].low
    assert old_high is not None
    assert old_low is not None
    assert new[item].high == pytest.approx(old_high * 0.8, rel=0.002)
    assert new[item].low == pytest.approx(old_low * 0.8, rel=0.002)
    assert {i: r for i, r in new.items() if i != item} == \
        {i: r for i, r in old.items() if i != item}          # one item moved, no other
    for path in ("/5m", "/1h"):                               # blocks rendered before: stale
        was = {r.item_id: r for r in parse.parse_snapshot(before[path], path).rows}
        now = {r.item_id: r for r in parse.parse_snapshot(get(sim, path).content, path).rows}
        if item in now:
            was_high = was[item].avg_high_price
            assert was_high is not None
            assert now[item].avg_high_price == pytest.approx(was_high * 0.8, rel=0.002)
        assert {i: r for i, r in now.items() if i != item} == \
            {i: r for i, r in was.items() if i != item}
    series = parse.parse_timeseries(
        get(sim, f"/timeseries?timestep=5m&id={item}").content, item).rows
    moved = [r for r in series if r.timestamp.timestamp() + 150 >= NOW - 3600]
    kept = [r for r in series if r.timestamp.timestamp() + 150 < NOW - 3600]
    assert moved
    assert kept
    old_series = {r.timestamp: r for r in parse.parse_timeseries(
        before[f"/timeseries?timestep=5m&id={item}"], item).rows}
    assert all(old_series[r.timestamp] == r for r in kept)  # the past before it is untouched
    assert get(sim, "/mapping").content == before["/mapping"]
    assert httpx.delete(sim.url + "/_sim/moves").json()["moves"] == []
    assert {p: get(sim, p).content for p in before} == before   # back to the seed alone


def test_a_move_scheduled_on_the_clock_happens_on_its_own(sim: SimulatorServer) -> None:
    item = _liquid_item(sim)
    httpx.post(sim.url + "/_sim/moves", json={"item": item, "change": -0.3,
                                              "at": "2026-01-01T00:10:00Z"})
    def price() -> int | None:
        return {r.item_id: r for r in parse.parse_latest(
            get(sim, "/latest").content).rows}[item].high
    first = price()
    httpx.post(sim.url + "/_sim/clock", json={"advance": 1200})
    later = price()
    assert later is not None
    assert first is not None
    assert later < first * 0.8                      # 30 % down, whatever the noise did


def test_bad_moves_get_400_and_change_nothing(sim: SimulatorServer) -> None:
    for bad in ({"change": -0.1}, {"item": 7}, {"item": 7, "change": -1},
                {"item": "7", "change": -0.1}, {"item": 7, "change": True},
                {"item": 7, "change": -0.1, "at": 100, "until": 50},
                {"item": 7, "change": -0.1, "at": "yesterday"}):
        assert httpx.post(sim.url + "/_sim/moves", json=bad).status_code == 400, bad
    assert httpx.get(sim.url + "/_sim/moves").json()["moves"] == []
    assert get(sim, "/_sim/moves").status_code == 200      # control: never refused
