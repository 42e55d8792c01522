"""People's approvals: signed by an allowed key, bound to zone, plan and hosts, expiring,
single use, audited — tried by the routes an agent would try."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

from gept.core.errors import ConfigError, InvalidInput, NeedsCoordination
from gept.guards import approval as approvals
from gept.guards import audit, coordination
from gept.guards.ledger import Ledger
from gept.guards.plans import plan_hash
from gept.guards.signers import Signers
from gept.guards.zones import GATE_ZONES, ZONES
from gept.testing.person import Person

H1 = plan_hash({"runbook": "restart-postgres", "hosts": ["ampere"]})
H2 = plan_hash({"runbook": "restart-postgres", "hosts": ["hydra"]})
AMPERE = "lab/ampere"


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Person]:
    d = tmp_path_factory.mktemp("people")
    return {n: Person.create(d, n) for n in ("alice", "bob", "mallory")}


@pytest.fixture
def guard(people: dict[str, Person], tmp_path: Path) -> coordination.Guard:
    # mallory is the agent: she has a key, but it is not among the allowed signers.
    return coordination.Guard(people["alice"].signers(people["bob"]),
                              Ledger(tmp_path / "used.jsonl"), (AMPERE,))


def _events() -> list[dict[str, object]]:
    return audit.read()


def test_no_approval_is_refused_with_how_and_audited(guard: coordination.Guard) -> None:
    with pytest.raises(NeedsCoordination) as err:
        guard.require("restart-postgres", H1, None, action="test")
    body = err.value.to_dict()
    assert body["status"] == "needs_coordination"
    assert (body["zone"], body["plan_hash"], body["hosts"]) == ("restart-postgres", H1, [AMPERE])
    assert f"--plan-hash {H1} --host {AMPERE}" in body["how"]
    assert err.value.exit_code == 3
    assert _events()[-1]["event"] == "refused"


def test_approval_works_once_and_names_the_signer(people: dict[str, Person],
                                                  guard: coordination.Guard) -> None:
    text = people["alice"].approve("restart-postgres", H1, [AMPERE])
    assert guard.require("restart-postgres", H1, text, action="test").by == "alice"
    with pytest.raises(NeedsCoordination, match="already used"):
        guard.require("restart-postgres", H1, text, action="test")
    assert [e["event"] for e in _events()][-2:] == ["approved_use", "refused"]
    assert text not in audit.log_path().read_text()  # approvals never reach the trail


@pytest.mark.parametrize(("change", "why"), [
    ({"zone": "model-registry"}, "is for zone 'restart-postgres'"),
    ({"plan_hash": H2}, "another plan"),
    ({"host": "lab/hydra"}, "not 'lab/hydra'"),
    ({"host": "production/ampere"}, "not 'production/ampere'"),  # a lab approval in production
])
def test_approval_allows_exactly_what_was_signed(people: dict[str, Person], tmp_path: Path,
                                                 change: dict[str, str], why: str) -> None:
    text = people["alice"].approve("restart-postgres", H1, [AMPERE])
    g = coordination.Guard(people["alice"].signers(), Ledger(tmp_path / "l"),
                           (change.get("host", AMPERE),))
    with pytest.raises(NeedsCoordination, match=why):
        g.require(change.get("zone", "restart-postgres"), change.get("plan_hash", H1), text,
                  action="test")


def test_expired_and_future_approvals_are_refused(people: dict[str, Person],
                                                  guard: coordination.Guard) -> None:
    old = people["alice"].approve("restart-postgres", H1, [AMPERE], ttl=60,
                                  now=int(time.time()) - 120)
    with pytest.raises(NeedsCoordination, match="expired"):
        guard.require("restart-postgres", H1, old, action="test")
    future = people["alice"].approve("restart-postgres", H1, [AMPERE],
                                     now=int(time.time()) + 3600)
    with pytest.raises(NeedsCoordination, match="future"):
        guard.require("restart-postgres", H1, future, action="test")


def test_the_agents_own_key_cannot_approve(people: dict[str, Person],
                                           guard: coordination.Guard) -> None:
    text = people["mallory"].approve("restart-postgres", H1, [AMPERE])
    with pytest.raises(NeedsCoordination, match="not signed by an allowed approver"):
        guard.require("restart-postgres", H1, text, action="test")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resign(person: Person, body: dict[str, object]) -> str:
    """What an adversary with *some* key does: write any message and sign it."""
    message = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    sig = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "gept-approval", "-f",
                          str(person.key)], input=message, capture_output=True,
                         check=True).stdout
    return f"gept2.{_b64(message)}.{_b64(sig)}"


def test_a_year_long_approval_is_refused_even_when_signed(people: dict[str, Person],
                                                         guard: coordination.Guard) -> None:
    now = int(time.time())
    text = _resign(people["alice"], {"v": 2, "zone": "restart-postgres", "plan_hash": H1,
                                     "hosts": [AMPERE], "iat": now, "exp": now + 365 * 86400,
                                     "nonce": "n", "reason": "x"})
    with pytest.raises(NeedsCoordination, match="longer than 24 hours"):
        guard.require("restart-postgres", H1, text, action="test")
    with pytest.raises(InvalidInput, match="24 hours"):
        people["alice"].approve("restart-postgres", H1, [AMPERE], ttl=25 * 3600)


def test_an_altered_approval_is_refused(people: dict[str, Person],
                                        guard: coordination.Guard) -> None:
    text = people["alice"].approve("restart-postgres", H2, [AMPERE])
    prefix, body, sig = text.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["plan_hash"] = H1
    forged = ".".join([prefix, base64.urlsafe_b64encode(json.dumps(
        claims, sort_keys=True, separators=(",", ":")).encode()).rstrip(b"=").decode(), sig])
    with pytest.raises(NeedsCoordination, match="bad signature"):
        guard.require("restart-postgres", H1, forged, action="test")


def test_a_signature_for_another_namespace_is_refused(people: dict[str, Person],
                                                      guard: coordination.Guard,
                                                      tmp_path: Path) -> None:
    now = int(time.time())
    body = {"v": 2, "zone": "restart-postgres", "plan_hash": H1, "hosts": [AMPERE],
            "iat": now, "exp": now + 600, "nonce": "n2", "reason": "x"}
    message = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    sig = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f",
                          str(people["alice"].key)], input=message, capture_output=True,
                         check=True).stdout
    with pytest.raises(NeedsCoordination, match=r"bad signature|not signed"):
        guard.require("restart-postgres", H1, f"gept2.{_b64(message)}.{_b64(sig)}",
                      action="test")


def test_concurrent_uses_spend_an_approval_once(people: dict[str, Person],
                                                guard: coordination.Guard) -> None:
    text = people["bob"].approve("restart-postgres", H1, [AMPERE])
    results: list[str] = []

    def use() -> None:
        try:
            guard.require("restart-postgres", H1, text, action="race")
            results.append("ok")
        except NeedsCoordination:
            results.append("refused")

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["refused"] * 5


def test_signing_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot approve"):
        approvals.sign("restart-postgres", H1, [AMPERE], "x", 60, tmp_path / "none")


def test_bad_requests_are_invalid_input(people: dict[str, Person]) -> None:
    with pytest.raises(InvalidInput, match="unknown danger zone"):
        people["alice"].approve("drop-everything", H1, [AMPERE])
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        people["alice"].approve("restart-postgres", "abc", [AMPERE])
    with pytest.raises(InvalidInput, match="hosts"):
        people["alice"].approve("restart-postgres", H1, ["ampere; rm -rf /"])


def test_signers_refuse_malformed_keys() -> None:
    with pytest.raises(ConfigError):
        Signers.from_mapping({"alice": "ssh-ed25519 AAAA\nssh-ed25519 BBBB"})
    with pytest.raises(ConfigError):
        Signers.from_mapping({"al ice": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx"})


def test_every_gate_action_is_in_a_known_zone() -> None:
    from typing import get_args as literal_values

    from gept.gate.actions import ACTIONS
    from gept.guards.zones import GateAction

    # One declared list of actions: the gate serves each, and each has its zone.
    assert set(ACTIONS) == set(GATE_ZONES) == set(literal_values(GateAction))
    assert set(GATE_ZONES.values()) <= set(ZONES)
    # Every argument a runbook may hand the gate has the gate's pattern, and no other.
    from typing import get_args

    from gept.gate.actions import ARG_PATTERNS
    from gept.guards.zones import GateArg

    assert set(ARG_PATTERNS) == set(get_args(GateArg))


def test_audit_redacts_approvals_and_secrets(people: dict[str, Person]) -> None:
    text = people["alice"].approve("restart-postgres", H1, [AMPERE])
    value = secrets.token_urlsafe(12)  # made up per run: no literal password in the repo
    record = audit.record("x", note=f"given {text}", password=value)
    assert text not in json.dumps(record)
    assert value not in json.dumps(record)
    assert record["password"] == "***redacted***"
