"""The database hosts' roles: what the deploy may do with a host, and the facts it reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gept.db.replication import slot_name

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from deploys.facts.standby import PostgresReplicationState, ResolvedAddresses  # noqa: E402
from deploys.tasks.standby import RoleRefused, decide  # noqa: E402

FRESH = {"signal": False, "masked": False, "database": False, "recovery": False}
PRIMARY = {"signal": False, "masked": False, "database": True, "recovery": False}
STANDBY = {"signal": True, "masked": False, "database": True, "recovery": True}
FENCED = {"signal": False, "masked": True, "database": False, "recovery": None, "data": True}


def test_the_inventorys_primary_stays_primary_and_a_fresh_host_is_seeded() -> None:
    assert decide("ampere", "ampere", PRIMARY) == "primary"
    assert decide("ampere", "ampere", FRESH) == "primary"   # a first converge
    assert decide("ampere-standby", "ampere", FRESH) == "seed"
    assert decide("ampere-standby", "ampere", STANDBY) == "standby"


def test_a_promoted_standby_is_never_turned_back_into_a_standby() -> None:
    # promote-standby ran, the inventory still says ampere: the promoted host is refused...
    with pytest.raises(RoleRefused, match="never demotes"):
        decide("ampere-standby", "ampere", PRIMARY)
    # ...and so is the fenced old primary, until db_primary names the new one.
    with pytest.raises(RoleRefused, match="fenced"):
        decide("ampere", "ampere", FENCED)
    assert decide("ampere-standby", "ampere-standby", PRIMARY) == "primary"
    assert decide("ampere", "ampere-standby", FENCED) == "reseed"


def test_a_standby_is_never_made_a_primary_by_the_deploy() -> None:
    with pytest.raises(RoleRefused, match="never promotes"):
        decide("ampere-standby", "ampere-standby", STANDBY)
    # a standby in recovery without the signal file (seen through the server) counts too
    with pytest.raises(RoleRefused):
        decide("ampere-standby", "ampere-standby", {**PRIMARY, "recovery": True})


def test_a_running_primary_with_data_is_not_reseeded_even_when_masked_later() -> None:
    # masked but still answering: not fenced (the gate stops it before masking)
    with pytest.raises(RoleRefused):
        decide("ampere", "ampere-standby", {**FENCED, "recovery": False, "database": True})


def test_replication_state_fact_parses_the_hosts_lines() -> None:
    fact = PostgresReplicationState()
    assert fact.process(["signal=true", "recovery=true", "database=true", "data=true"]) == {
        "signal": True, "masked": False, "database": True, "recovery": True, "data": True,
        "slots": []}
    assert fact.process(["recovery=false", "database=true", "slot=gept_ampere_standby"])[
        "slots"] == ["gept_ampere_standby"]
    assert fact.process(["masked=true"])["recovery"] is None
    assert "standby.signal" in fact.command(15, "osrs_data")


def test_resolved_addresses_fact_and_slot_names() -> None:
    assert ResolvedAddresses().process(["ampere 172.18.0.2", "ampere 172.18.0.2",
                                        "ampere-standby 172.18.0.4"]) == {
        "ampere": ["172.18.0.2"], "ampere-standby": ["172.18.0.4"]}
    assert slot_name("ampere-standby") == "gept_ampere_standby"
