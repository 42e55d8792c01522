"""Coordination tokens: single use, bound to zone and plan, expiring, audited."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from gept import guards
from gept.core.errors import ConfigError, InvalidInput, NeedsCoordination

H1 = guards.plan_hash({"runbook": "restart-postgres", "hosts": ["ampere"]})
H2 = guards.plan_hash({"runbook": "restart-postgres", "hosts": ["hydra"]})


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GEPT_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GEPT_COORDINATION_TOKEN", raising=False)
    monkeypatch.delenv("GEPT_COORDINATION_KEY_FILE", raising=False)
    return tmp_path


def _events(state: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (state / "audit.jsonl").read_text().splitlines()]


def test_no_token_is_refused_with_how_and_audited(state: Path) -> None:
    with pytest.raises(NeedsCoordination) as err:
        guards.require("restart-postgres", H1, None, action="test")
    body = err.value.to_dict()
    assert body["status"] == "needs_coordination"
    assert body["zone"] == "restart-postgres"
    assert body["plan_hash"] == H1
    assert "gept coordinate approve --zone restart-postgres" in body["how"]
    assert err.value.exit_code == 3
    assert _events(state)[-1]["event"] == "refused"


def test_token_is_single_use(state: Path) -> None:
    token = guards.approve("restart-postgres", H1, "window", 900, approved_by="alice")
    assert guards.require("restart-postgres", H1, token, action="test")
    with pytest.raises(NeedsCoordination, match="already used"):
        guards.require("restart-postgres", H1, token, action="test")
    events = [e["event"] for e in _events(state)]
    assert events == ["approved", "coordination_used", "refused"]
    # The token itself never reaches the audit log.
    assert token not in (state / "audit.jsonl").read_text()


def test_key_file_is_private(state: Path) -> None:
    guards.approve("restart-postgres", H1, "window", 60)
    assert stat.S_IMODE((state / "coordination.key").stat().st_mode) == 0o600


def test_wrong_zone_and_wrong_plan_are_refused_and_token_survives() -> None:
    token = guards.approve("restart-postgres", H1, "window", 900)
    with pytest.raises(NeedsCoordination, match="zone"):
        guards.require("model-registry", H1, token, action="test")
    with pytest.raises(NeedsCoordination, match="another plan"):
        guards.require("restart-postgres", H2, token, action="test")
    # Misuse attempts do not burn the token for its real plan.
    guards.require("restart-postgres", H1, token, action="test")


def test_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    token = guards.approve("restart-postgres", H1, "window", 1)
    real = time.time
    monkeypatch.setattr(guards.time, "time", lambda: real() + 5)
    with pytest.raises(NeedsCoordination, match="expired"):
        guards.require("restart-postgres", H1, token, action="test")


def test_tampered_token_is_refused() -> None:
    token = guards.approve("restart-postgres", H1, "window", 900)
    prefix, body, sig = token.split(".")
    payload = json.loads(guards._unb64(body))
    payload["plan_hash"] = H2
    forged = ".".join([prefix, guards._b64(json.dumps(payload).encode()), sig])
    with pytest.raises(NeedsCoordination, match="signature"):
        guards.require("restart-postgres", H2, forged, action="test")


def test_token_from_another_key_is_refused(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    monkeypatch.setenv("GEPT_STATE_DIR", str(other))
    token = guards.approve("restart-postgres", H1, "window", 900)
    monkeypatch.setenv("GEPT_STATE_DIR", str(tmp_path / "mine"))
    guards.approve("model-registry", H1, "make a key", 900)
    with pytest.raises(NeedsCoordination, match="signature"):
        guards.require("restart-postgres", H1, token, action="test")


def test_env_token_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    token = guards.approve("model-registry", H1, "promote", 900)
    monkeypatch.setenv("GEPT_COORDINATION_TOKEN", token)
    guards.require("model-registry", H1, None, action="test")


def test_revoked_token_is_refused_and_listed() -> None:
    token = guards.approve("collector-intervals", H1, "x", 900)
    tid = guards.list_tokens()[0]["id"]
    assert guards.list_tokens()[0]["state"] == "active"
    guards.revoke(tid)
    assert guards.list_tokens()[0]["state"] == "revoked"
    with pytest.raises(NeedsCoordination, match="revoked"):
        guards.require("collector-intervals", H1, token, action="test")
    with pytest.raises(InvalidInput):
        guards.revoke("nope")


def test_concurrent_use_consumes_once() -> None:
    token = guards.approve("restart-postgres", H1, "window", 900)
    results: list[str] = []

    def use() -> None:
        try:
            guards.require("restart-postgres", H1, token, action="race")
            results.append("ok")
        except NeedsCoordination:
            results.append("refused")

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["ok"] + ["refused"] * 5


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInput, match="zone"):
        guards.approve("drop-everything", H1, "x", 60)
    with pytest.raises(InvalidInput, match="plan hash"):
        guards.approve("restart-postgres", "abc", "x", 60)
    with pytest.raises(InvalidInput, match="reason"):
        guards.approve("restart-postgres", H1, " ", 60)
    with pytest.raises(InvalidInput, match="ttl"):
        guards.parse_ttl("3w")
    with pytest.raises(InvalidInput, match="24 hours"):
        guards.parse_ttl("2d")
    assert guards.parse_ttl("15m") == 900


def test_world_readable_key_is_refused(state: Path) -> None:
    guards.approve("restart-postgres", H1, "window", 60)
    os.chmod(state / "coordination.key", 0o644)
    with pytest.raises(ConfigError, match="0600"):
        guards.approve("restart-postgres", H1, "window", 60)


def test_audit_redacts_secrets(state: Path) -> None:
    guards.audit("step", params={"password": "hunter2", "collector": "5m"},
                 note="used gept1.abc.def")
    line = (state / "audit.jsonl").read_text()
    assert "hunter2" not in line
    assert "gept1.abc.def" not in line
    assert '"collector": "5m"' in line


def test_check_refuses_like_require_but_does_not_consume(state: Path) -> None:
    with pytest.raises(NeedsCoordination):
        guards.check("restart-postgres", H1, None, action="test")
    token = guards.approve("restart-postgres", H1, "window", 900)
    assert guards.check("restart-postgres", H1, token, action="test")
    assert guards.check("restart-postgres", H1, token, action="test")
    guards.require("restart-postgres", H1, token, action="test")
    with pytest.raises(NeedsCoordination, match="already used"):
        guards.check("restart-postgres", H1, token, action="test")
