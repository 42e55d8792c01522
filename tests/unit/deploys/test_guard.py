"""Danger-zone detection in the deploys' guard: pure functions of facts and desired data."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from deploys import guard  # noqa: E402

DESIRED = {"listen_addresses": "'localhost'", "max_connections": "100", "work_mem": "16MB"}
RESTART = ["listen_addresses", "max_connections", "shared_buffers"]
CLUSTER = [{"version": 15, "name": "main", "port": 5432, "status": "online"}]


def test_first_install_is_not_a_restart() -> None:
    assert guard.restart_postgres_changes(None, DESIRED, RESTART, [], 15) == []


def test_reloadable_setting_is_not_a_restart() -> None:
    current = {**DESIRED, "work_mem": "8MB"}
    assert guard.restart_postgres_changes(current, DESIRED, RESTART, CLUSTER, 15) == []


def test_restart_only_setting_is_the_zone() -> None:
    current = {**DESIRED, "max_connections": "90"}
    changes = guard.restart_postgres_changes(current, DESIRED, RESTART, CLUSTER, 15)
    assert changes == [{"setting": "max_connections", "from": "90", "to": "100"}]


def test_major_upgrade_is_the_zone() -> None:
    old = [{"version": 14, "name": "main", "port": 5432, "status": "online"}]
    changes = guard.restart_postgres_changes(DESIRED, DESIRED, RESTART, old, 15)
    assert changes == [{"upgrade": {"from": 14, "to": 15}}]


def test_fresh_database_needs_no_schema_token() -> None:
    assert guard.predictions_schema_changes({}) == []


def test_pending_zoned_migration_on_a_live_schema_is_the_zone() -> None:
    changes = guard.predictions_schema_changes({1: "x"})
    assert [c["migration"] for c in changes] == ["0002_models_and_predictions"]


def test_interval_change_is_the_zone_but_first_deploy_is_not() -> None:
    assert guard.interval_changes(None, {"5m": 300}) == []
    assert guard.interval_changes({"5m": 300}, {"5m": 300}) == []
    assert guard.interval_changes({"5m": 300}, {"5m": 600}) == [
        {"collector": "5m", "from": 300, "to": 600}]


def test_model_pin_differing_from_active_is_the_zone() -> None:
    assert guard.model_registry_changes({"global": 3}, {"global": 3}) == []
    assert guard.model_registry_changes({"global": 3}, {"global": 4}) == [
        {"scope": "global", "from": 3, "to": 4}]


def test_stopping_hydra_inference_needs_the_fallback() -> None:
    cron = ["*/5 * * * * gept gept infer --role primary"]
    assert guard.stop_inference_changes(cron, False, True, fallback_ready=True) == []
    assert guard.stop_inference_changes(None, False, True, fallback_ready=False) == []
    changes = guard.stop_inference_changes(cron, False, False, fallback_ready=False)
    assert {c.get("cron", c.get("service")) for c in changes} == {
        "/etc/cron.d/gept-inference", "gept-db-tunnel"}


def test_plan_hash_binds_zone_and_changes() -> None:
    # The host is bound by the approval itself (it names <inventory>/<host>), not the hash.
    changes = [{"collector": "5m", "from": 300, "to": 600}]
    a = guard.deploy_plan_hash("collector-intervals", changes)
    assert a == guard.deploy_plan_hash("collector-intervals", list(changes))
    assert a != guard.deploy_plan_hash("restart-postgres", changes)
    assert a != guard.deploy_plan_hash("collector-intervals",
                                       [{"collector": "5m", "from": 300, "to": 900}])


def test_a_migration_approval_is_the_same_on_both_sides() -> None:
    from gept.db.migrate import Migration, zone_changes

    mig = Migration(99, "alter_predictions", "-- gept:zone predictions-schema\nSELECT 1;",
                    ("predictions-schema",))
    changes = zone_changes([mig], "predictions-schema")
    from gept.guards.plans import change_hash

    assert guard.deploy_plan_hash("predictions-schema", changes) == change_hash(
        "predictions-schema", changes)
