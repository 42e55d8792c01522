"""Danger-zone guards in the deploys, on the converged lab.

For each of the five zones: the deploy is refused with exit 3 naming the zone and plan
hash, and nothing on either host changed; a missing, wrong-zone, expired or malformed
approval is refused the same way; a person's approval (signed with the lab's approver key)
lets exactly that plan through, and the same approval presented again is refused as used.
Each test leaves the lab as it found it (reverting through the guard as an operator would).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from gept import convergence
from gept.guards import approval as approvals
from gept.guards.zones import ZONES
from gept.lab.agent import approver_key
from gept.lab.topology import LabTopology

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

pytestmark = pytest.mark.timeout(1800)

SNAPSHOT = (
    "cd / && { find /etc/gept /etc/cron.d /etc/systemd/system /opt/gept/collectors "
    "/etc/postgresql -type f 2>/dev/null | sort | xargs -r sha256sum; "
    "docker ps -aq --no-trunc 2>/dev/null | sort; "
    "systemctl show -p ActiveEnterTimestamp postgresql@15-main recommendation-engine "
    "2>/dev/null; "
    "runuser -u postgres -- psql -d osrs_data -tAc 'SELECT pg_postmaster_start_time(); "
    "SELECT version FROM schema_migrations ORDER BY 1; "
    "SELECT id, status FROM model_registry ORDER BY 1' 2>/dev/null; } ; true"
)


@pytest.fixture(scope="module")
def coordination(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private coordination store for this module: tokens approved here, used by pyinfra."""
    state = tmp_path_factory.mktemp("coordination")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEPT_STATE_DIR", str(state))
        mp.delenv("GEPT_COORDINATION_TOKEN", raising=False)
        yield {"GEPT_STATE_DIR": str(state)}


def snapshot(lab: Any) -> dict[str, str]:
    """What a deploy could change on both hosts (files, unit/container starts, DB state)."""
    return {h: lab.sh(h, SNAPSHOT) for h in ("ampere", "hydra")}


def deploy(args: tuple[str, ...], token: str | None = None) -> convergence.ConvergeResult:
    extra = args + (("--data", f"approvals={token}") if token else ())
    return convergence.converge(extra_args=extra, timeout=900)


def refusal(result: convergence.ConvergeResult) -> dict[str, Any]:
    """The guard's JSON refusal from stderr."""
    assert result.returncode == 3, (result.returncode, result.stderr[-3000:])
    for line in result.stderr.splitlines():
        if line.startswith("{") and '"zone"' in line:
            try:
                doc: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            return doc
    raise AssertionError(f"no refusal JSON on stderr: {result.stderr[-2000:]}")


def approve(zone: str, plan_hash: str, ttl: int = 900, hosts: list[str] | None = None) -> str:
    """The person (root) signs with the lab's approver key."""
    return approvals.sign(zone, plan_hash, hosts or ["lab/ampere", "lab/hydra"],
                          "lab test of the deploy guard", ttl,
                          approver_key(LabTopology.from_env()))


def through_guard(args: tuple[str, ...], zone: str) -> tuple[convergence.ConvergeResult, str]:
    """Run a zone-touching deploy as an operator: refused, approve its plan, run with token."""
    refused = refusal(deploy(args))
    assert refused["zone"] == zone
    token = approve(zone, refused["plan_hash"], hosts=refused.get("hosts"))
    result = deploy(args, token)
    assert result.returncode == 0, result.stderr[-4000:]
    return result, token


def check_refusals(lab: Any, args: tuple[str, ...], zone: str) -> str:
    """No token, wrong-zone, expired and malformed tokens: exit 3, nothing changed.

    Returns:
        The plan hash the guard named.
    """
    before = snapshot(lab)
    first = refusal(deploy(args))
    assert first["zone"] == zone
    digest: str = first["plan_hash"]
    assert len(digest) == 64
    other = next(z for z in ZONES if z != zone)
    expired = approve(zone, digest, ttl=1)
    time.sleep(2)
    for token, why in ((approve(other, digest), "zone"), (expired, "expired"),
                       ("gept1.bm90.YQ", "not an approval")):
        body = refusal(deploy(args, token))
        assert body["zone"] == zone
        assert body["plan_hash"] == digest
        assert why in body.get("reason", body.get("message", "")), body
    assert snapshot(lab) == before, "a refused deploy changed a host"
    return digest


def _psql(lab: LabHandle, sql: str) -> str:
    return lab.sh("ampere", f"runuser -u postgres -- psql -d osrs_data -tAc {json.dumps(sql)}"
                  ).strip()


AMPERE = ("--limit", "ampere")


def test_restart_postgres_zone(converged_lab: Any, coordination: dict[str, str]) -> None:
    lab = converged_lab
    settings = dict(lab.inventory.host("ampere").data["postgres_settings"])
    # shared_buffers: restart-only, and a standby need not match it (max_connections above
    # the standby's would pause its replay for good).
    changed = {**settings, "shared_buffers": "144MB"}
    args = (*AMPERE, "--data", f"postgres_settings={json.dumps(changed)}")
    check_refusals(lab, args, "restart-postgres")
    started = _psql(lab, "SELECT pg_postmaster_start_time()")
    _, token = through_guard(args, "restart-postgres")
    assert _psql(lab, "SHOW shared_buffers") == "144MB"
    assert _psql(lab, "SELECT pg_postmaster_start_time()") != started, "not restarted"
    # Back to the inventory's value: another restart, another token.
    through_guard((*AMPERE,), "restart-postgres")
    assert _psql(lab, "SHOW shared_buffers") == settings["shared_buffers"]
    # The first token was used: the same plan again is refused.
    body = refusal(deploy(args, token))
    assert "used" in body.get("reason", "")


def test_reload_only_settings_need_no_token(converged_lab: Any,
                                            coordination: dict[str, str]) -> None:
    lab = converged_lab
    settings = dict(lab.inventory.host("ampere").data["postgres_settings"])
    started = _psql(lab, "SELECT pg_postmaster_start_time()")
    result = deploy((*AMPERE, "--data",
                     f"postgres_settings={json.dumps({**settings, 'work_mem': '32MB'})}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert _psql(lab, "SHOW work_mem") == "32MB"
    assert _psql(lab, "SELECT pg_postmaster_start_time()") == started, "restarted for a reload"
    assert deploy(AMPERE).returncode == 0


def test_predictions_schema_zone(converged_lab: Any, coordination: dict[str, str]) -> None:
    lab = converged_lab
    row = _psql(lab, "SELECT version || '|' || name || '|' || checksum FROM schema_migrations "
                     "WHERE version = 2")
    version, name, checksum = row.split("|")
    # A pending migration marked `-- gept:zone predictions-schema` on a live schema.
    _psql(lab, "DELETE FROM schema_migrations WHERE version = 2")
    try:
        check_refusals(lab, AMPERE, "predictions-schema")
        assert _psql(lab, "SELECT count(*) FROM schema_migrations WHERE version = 2") == "0"
        through_guard(AMPERE, "predictions-schema")
        assert _psql(lab, "SELECT checksum FROM schema_migrations WHERE version = 2") == checksum
    finally:
        _psql(lab, f"INSERT INTO schema_migrations (version, name, checksum) VALUES "
                   f"({version}, '{name}', '{checksum}') ON CONFLICT DO NOTHING")


def test_stop_hydra_inference_zone(converged_lab: Any, coordination: dict[str, str]) -> None:
    lab = converged_lab
    args = ("--data", "inference_enabled=false")
    check_refusals(lab, args, "stop-hydra-inference")
    assert "--role primary" in lab.sh("hydra", "cat /etc/cron.d/gept-inference")
    try:
        through_guard(args, "stop-hydra-inference")
        assert lab.run("hydra", "test -e /etc/cron.d/gept-inference").returncode == 1
    finally:
        # Re-enabling inference touches no zone.
        assert deploy(()).returncode == 0
    assert "--role primary" in lab.sh("hydra", "cat /etc/cron.d/gept-inference")


def test_stopping_hydra_inference_is_refused_when_the_fallback_is_unknown(
        converged_lab: Any, coordination: dict[str, str]) -> None:
    lab = converged_lab
    before = snapshot(lab)
    # Ampere is outside this run, so the guard cannot see its fallback: it refuses.
    body = refusal(deploy(("--limit", "hydra", "--data", "inference_enabled=false")))
    assert body["zone"] == "stop-hydra-inference"
    assert body["host"] == "hydra"
    assert snapshot(lab) == before


def test_collector_intervals_zone(converged_lab: Any, coordination: dict[str, str]) -> None:
    lab = converged_lab
    intervals = dict(lab.inventory.host("ampere").data["collector_intervals"])
    args = (*AMPERE, "--data", f"collector_intervals={json.dumps({**intervals, '5m': 600})}")
    check_refusals(lab, args, "collector-intervals")
    try:
        through_guard(args, "collector-intervals")
        recorded = json.loads(lab.sh("ampere", "cat /opt/gept/collectors/intervals.json"))
        assert recorded["5m"] == 600
        env = lab.sh("ampere", "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "
                     "collectors_collector-5m_1")
        assert "GEPT_COLLECTOR_INTERVAL_SECONDS=600" in env
    finally:
        result = deploy(AMPERE)
        if result.returncode == 3:
            through_guard(AMPERE, "collector-intervals")
    recorded = json.loads(lab.sh("ampere", "cat /opt/gept/collectors/intervals.json"))
    assert recorded == intervals


def test_model_registry_zone(converged_lab: Any, coordination: dict[str, str]) -> None:
    lab = converged_lab
    scope, active = _psql(lab, "SELECT scope || '|' || id FROM model_registry "
                               "WHERE status = 'ACTIVE' ORDER BY id LIMIT 1").split("|")
    # A second promotable model: the same artifact registered again under another run id.
    other = _psql(lab, (
        "INSERT INTO model_registry (scope, run_id, model_path, artifact_sha256, status, "
        "windows_hours, offsets_pct, feature_names, item_ids, validation_passed, mean_auc, "
        "validation_auc, metrics, task_type, n_samples) SELECT scope, run_id || '-pin-' || "
        "extract(epoch FROM now())::bigint, model_path, artifact_sha256, 'PENDING', "
        "windows_hours, offsets_pct, feature_names, item_ids, validation_passed, mean_auc, "
        f"validation_auc, metrics, task_type, n_samples FROM model_registry WHERE id = {active} "
        "RETURNING id")).splitlines()[0]
    args = ("--data", f"model_pins={json.dumps({scope: int(other)})}")
    check_refusals(lab, args, "model-registry")
    assert _psql(lab, f"SELECT id FROM model_registry WHERE status = 'ACTIVE' "
                      f"AND scope = '{scope}'") == active
    through_guard(args, "model-registry")
    assert _psql(lab, f"SELECT id FROM model_registry WHERE status = 'ACTIVE' "
                      f"AND scope = '{scope}'") == other
    # Pin the original back (an operator's rollback through the same guard).
    through_guard(("--data", f"model_pins={json.dumps({scope: int(active)})}"),
                  "model-registry")
    assert _psql(lab, f"SELECT id FROM model_registry WHERE status = 'ACTIVE' "
                      f"AND scope = '{scope}'") == active


def test_an_approval_in_the_environment_is_ignored(converged_lab: Any,
                                                  coordination: dict[str, str]) -> None:
    lab = converged_lab
    before = snapshot(lab)
    intervals = dict(lab.inventory.host("ampere").data["collector_intervals"])
    args = (*AMPERE, "--data", f"collector_intervals={json.dumps({**intervals, 'news': 900})}")
    refused = refusal(deploy(args))
    token = approve("collector-intervals", refused["plan_hash"], hosts=refused.get("hosts"))
    result = convergence.converge(extra_args=args, timeout=900,
                           env={"GEPT_COORDINATION_TOKEN": token, "GEPT_APPROVALS": token})
    assert refusal(result)["zone"] == "collector-intervals"
    assert snapshot(lab) == before
