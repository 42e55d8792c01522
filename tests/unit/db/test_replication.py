"""What the deploys and the gate's switchover both write, and the lag metrics' text."""

from __future__ import annotations

from gept.db import replication


def test_the_standby_fragment_names_no_password_and_its_own_slot() -> None:
    text = replication.standby_conf("ampere", "ampere", "ampere-standby", 15, 5432)
    assert "primary_slot_name = 'gept_ampere_standby'" in text
    assert "sslmode=verify-full" in text
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any("password" in line.replace("passfile", "") for line in settings)
    # The gate passes the version as the text it read from host.json: the same bytes.
    assert replication.standby_conf("ampere", "ampere", "ampere-standby", "15") == text


def test_wal_locations_compare_as_positions() -> None:
    assert replication.parse_lsn("0/1E000CD0") < replication.parse_lsn("0/1E000D00")
    assert replication.parse_lsn("1/0") > replication.parse_lsn("0/FFFFFFFF")


def test_metrics_of_a_primary_a_standby_and_a_silent_cluster() -> None:
    primary = replication.render_metrics(
        ["f", "0", "0"], [["standby", "gept_ampere_standby", "streaming", "0.25", "8192"],
                          ["slot", "gept_ampere_standby", "true", "0", "0"]], 1796180012.5)
    assert "gept_postgres_replication_metrics_timestamp_seconds 1796180012.5" in primary
    assert "gept_postgres_replication_standbys_streaming 1" in primary
    assert 'gept_postgres_replication_lag_bytes{standby="gept_ampere_standby"} 8192' in primary
    standby = replication.render_metrics(["t", "1", "0.5"], [], 1.0)
    assert "gept_postgres_is_primary 0" in standby
    assert "gept_postgres_standby_streaming 1" in standby
    assert "gept_postgres_replication_slots" not in standby
    down = replication.render_metrics(None, [], 1.0)
    assert "gept_postgres_replication_up 0" in down
    assert "gept_postgres_is_primary" not in down
