"""The model registry lifecycle against a real PostgreSQL: people's approvals, atomic swaps,
rollback, the gate, checksums, the CLI's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg.rows import TupleRow

from gept.core.clock import utcnow
from gept.core.errors import IntegrityError, InvalidInput, NeedsCoordination
from gept.guards import audit
from gept.guards.approval import Approval
from gept.guards.coordination import Guard
from gept.guards.ledger import Ledger
from gept.guards.plans import plan_hash
from gept.registry import artifacts, lifecycle
from gept.registry.features import FEATURE_NAMES
from gept.registry.grid import TargetGrid
from gept.testing.person import Person

GRID = TargetGrid.named("default")


@pytest.fixture(scope="module")
def tiny_model() -> object:
    from catboost import CatBoostClassifier

    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURE_NAMES))).astype(np.float32)
    y = (rng.random((200, 3)) < 0.4).astype(np.int8)
    model = CatBoostClassifier(loss_function="MultiLogloss", iterations=3, depth=2,
                               verbose=False, allow_writing_files=False, thread_count=1)
    model.fit(x, y)
    return model


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "models"
    monkeypatch.setenv("GEPT_MODELS_DIR", str(path))
    from gept.core.config import get_settings

    get_settings.cache_clear()
    return path


def add(conn: psycopg.Connection[tuple[object, ...]], models_dir: Path, model: object,
        run_id: str, *, passed: bool = True, scope: str = "global") -> int:
    path, digest = artifacts.save(models_dir, run_id, scope, model, {"test": True})
    return lifecycle.register(
        conn, scope=scope, run_id=run_id, model_path=path, artifact_sha256=digest,
        windows_hours=GRID.windows_hours, offsets_pct=GRID.offsets, feature_names=FEATURE_NAMES,
        validation_passed=passed, mean_auc=0.7 if passed else 0.5,
        metrics={"trained_targets": [0, 1, 2], "fallback_rates": [0.1] * GRID.size})


HOST = "test/hydra"


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> Person:
    return Person.create(tmp_path_factory.mktemp("people"), "alice")


@pytest.fixture
def guard(alice: Person, tmp_path: Path) -> Guard:
    return Guard(alice.signers(), Ledger(tmp_path / "used.jsonl"), (HOST,))


@pytest.fixture
def ok(alice: Person, guard: Guard) -> Callable[..., Approval]:
    """``ok(plan)``: a verified approval for that plan (what the CLI and the gate hand in)."""
    def make(plan: dict[str, object]) -> Approval:
        digest = plan_hash(plan)
        return guard.require("model-registry", digest,
                             alice.approve("model-registry", digest, [HOST]), action="test")

    return make


def statuses(conn: psycopg.Connection[TupleRow]) -> dict[int, str]:
    return {int(i): str(s) for i, s in
            conn.execute("SELECT id, status FROM model_registry").fetchall()}



def active_and_pending(conn: psycopg.Connection[tuple[object, ...]], models_dir: Path,
                       tiny_model: object) -> tuple[int, int]:
    """Two registered models of the global scope: the older ACTIVE, the newer PENDING."""
    a = add(conn, models_dir, tiny_model, "20260101_000000")
    b = add(conn, models_dir, tiny_model, "20260102_000000")
    lifecycle.promote_initial(conn, a, models_dir=models_dir)
    return a, b

def test_bootstrap_then_promote_needs_an_approval_and_swaps_atomically(
        db_dsn: str, models_dir: Path, tiny_model: object, ok: Callable[..., Approval]) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        a = add(conn, models_dir, tiny_model, "20260101_000000")
        b = add(conn, models_dir, tiny_model, "20260102_000000")
        assert lifecycle.promote_initial(conn, a, models_dir=models_dir).activated == a
        assert statuses(conn) == {a: "ACTIVE", b: "PENDING"}
        # A bootstrap is refused once the registry has an ACTIVE model.
        with pytest.raises(NeedsCoordination) as refused:
            lifecycle.promote_initial(conn, b, models_dir=models_dir)
        assert refused.value.exit_code == 3
        assert refused.value.details["plan_hash"] == lifecycle.promote_plan_hash(b)
        # A verified approval for another zone does not open this one.
        wrong = Approval("restart-postgres", "0" * 64, (HOST,), 0, 1, "n", "x", "alice")
        with pytest.raises(NeedsCoordination):
            lifecycle.promote(conn, b, approved=wrong, models_dir=models_dir)
        change = lifecycle.promote(conn, b, approved=ok(
            {"action": "models-promote", "model_id": b}), models_dir=models_dir)
        assert (change.activated, change.deprecated) == (b, a)
        assert statuses(conn) == {a: "DEPRECATED", b: "ACTIVE"}
    events = [e["event"] for e in audit.read()]
    assert "models-promote" in events
    assert "models-bootstrap" in events


def test_rollback_restores_the_previous_active_model(
        db_dsn: str, models_dir: Path, tiny_model: object, ok: Callable[..., Approval]) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        a, b = active_and_pending(conn, models_dir, tiny_model)
        lifecycle.promote(conn, b, approved=ok({"action": "models-promote",
                                                    "model_id": b}), models_dir=models_dir)
        change = lifecycle.rollback(
            conn, "global", approved=ok({"action": "models-rollback", "scope": "global"}),
            models_dir=models_dir)
        assert (change.activated, change.deprecated) == (a, b)
        assert statuses(conn) == {a: "ACTIVE", b: "DEPRECATED"}
        # Nothing older than a: refused, and a stays ACTIVE (never zero ACTIVE models).
        with pytest.raises(InvalidInput, match="no previous model"):
            lifecycle.rollback(conn, "global", approved=ok(
                {"action": "models-rollback", "scope": "global"}), models_dir=models_dir)
        assert statuses(conn)[a] == "ACTIVE"


def test_a_model_that_failed_the_gate_can_never_be_active(
        db_dsn: str, models_dir: Path, tiny_model: object, ok: Callable[..., Approval]) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        bad = add(conn, models_dir, tiny_model, "20260101_000000", passed=False)
        with pytest.raises(InvalidInput, match="failed its validation gate"):
            lifecycle.promote_initial(conn, bad, models_dir=models_dir)
        with pytest.raises(InvalidInput, match="failed its validation gate"):
            lifecycle.promote(conn, bad, approved=ok({"action": "models-promote",
                                                          "model_id": bad}),
                              models_dir=models_dir)
        with pytest.raises(psycopg.errors.CheckViolation):   # the schema refuses it too
            conn.execute("UPDATE model_registry SET status = 'ACTIVE' WHERE id = %s", (bad,))
        assert statuses(conn) == {bad: "PENDING"}


def test_two_active_models_in_one_scope_are_impossible(
        db_dsn: str, models_dir: Path, tiny_model: object, ok: Callable[..., Approval]) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _a, b = active_and_pending(conn, models_dir, tiny_model)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE model_registry SET status = 'ACTIVE' WHERE id = %s", (b,))
        # Another scope has its own ACTIVE model; activating it changes what the engine
        # serves, so it needs a person's approval like any other promotion.
        c = add(conn, models_dir, tiny_model, "20260103_000000", scope="item:4151")
        with pytest.raises(NeedsCoordination):
            lifecycle.promote_initial(conn, c, models_dir=models_dir)
        lifecycle.promote(conn, c, approved=ok({"action": "models-promote", "model_id": c}),
                          models_dir=models_dir)
        assert len(lifecycle.active_models(conn)) == 2


def test_tampered_artifact_is_refused_with_a_clear_error(
        db_dsn: str, models_dir: Path, tiny_model: object) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        a = add(conn, models_dir, tiny_model, "20260101_000000")
        record = lifecycle.get(conn, a)
        path = models_dir / record.model_path
        path.write_bytes(path.read_bytes() + b"\x00")
        with pytest.raises(IntegrityError) as exc:
            lifecycle.promote_initial(conn, a, models_dir=models_dir)
        assert "failed its checksum" in exc.value.message
        assert record.artifact_sha256 in exc.value.message
        path.unlink()
        with pytest.raises(IntegrityError, match="missing"):
            artifacts.load_verified(models_dir, record.model_path, record.artifact_sha256)
        assert statuses(conn) == {a: "PENDING"}


def test_lifecycle_ages_out_old_models(db_dsn: str, models_dir: Path,
                                       tiny_model: object, ok: Callable[..., Approval]) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        a, b = active_and_pending(conn, models_dir, tiny_model)
        lifecycle.promote(conn, b, approved=ok({"action": "models-promote",
                                                    "model_id": b}), models_dir=models_dir)
        later = utcnow() + timedelta(hours=25)
        assert lifecycle.advance_lifecycle(conn, now=later) == {"sunset": 1, "archived": 0}
        assert lifecycle.advance_lifecycle(conn, now=later + timedelta(hours=49)) == {
            "sunset": 0, "archived": 1}
        assert statuses(conn) == {a: "ARCHIVED", b: "ACTIVE"}
        with pytest.raises(InvalidInput, match="ARCHIVED"):
            lifecycle.promote(conn, a, approved=ok({"action": "models-promote", "model_id": a}),
                              models_dir=models_dir)


def test_cli_list_and_promote_exit_codes(db_dsn: str, models_dir: Path, tiny_model: object,
                                         alice: Person) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _a, b = active_and_pending(conn, models_dir, tiny_model)

    def gept(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gept.cli", *args], capture_output=True,
                              text=True, timeout=60, env=dict(os.environ), check=False)

    listed = gept("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [m["status"] for m in json.loads(listed.stdout)["models"]] == ["PENDING", "ACTIVE"]
    refused = gept("models", "promote", str(b), "--json")
    assert refused.returncode == 3
    body = json.loads(refused.stdout)
    assert body["zone"] == "model-registry"
    assert body["plan_hash"] == lifecycle.promote_plan_hash(b)
    # On a machine the deploys never converged there is no host identity and no allowed
    # signers: an approval cannot be checked, so nothing is promoted (exit 2, says why).
    text = alice.approve("model-registry", lifecycle.promote_plan_hash(b), [HOST])
    elsewhere = gept("models", "promote", str(b), "--approval", text, "--json")
    assert elsewhere.returncode == 2
    assert "not a converged GePT host" in elsewhere.stdout + elsewhere.stderr
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert statuses(conn)[b] == "PENDING"
    assert Decimal("0.0125") in GRID.offsets


def test_beta_mark_is_a_caution_action_audited_and_refused_for_a_failed_model(
        db_dsn: str, models_dir: Path, tiny_model: object) -> None:
    from gept.registry import beta

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        a = add(conn, models_dir, tiny_model, "20260101_000000")
        bad = add(conn, models_dir, tiny_model, "20260102_000000", passed=False)
        lifecycle.promote_initial(conn, a, models_dir=models_dir)
        first = beta.mark(conn, a, beta=True, reason="trial")
        assert (first.changed, first.serves, first.to_dict()["class"]) == (True, True, "caution")
        assert beta.mark(conn, a, beta=True).changed is False          # idempotent
        assert beta.beta_models(conn) == [a]
        # The rest of training's record is kept; the model's status is untouched.
        assert lifecycle.get(conn, a).metrics["trained_targets"] == [0, 1, 2]
        assert statuses(conn)[a] == "ACTIVE"
        with pytest.raises(InvalidInput, match="validation gate"):
            beta.mark(conn, bad, beta=True)
        with pytest.raises(InvalidInput, match="no model"):
            beta.mark(conn, 999_999, beta=True)
        assert beta.mark(conn, a, beta=False).changed is True
        assert beta.beta_models(conn) == []
    marks = [e for e in audit.read() if e["event"] == "models-beta"]
    assert [(e["model_id"], e["beta"], e["changed"]) for e in marks] == [
        (a, True, True), (a, True, False), (a, False, True)]
    assert marks[0]["reason"] == "trial"


def test_cli_marks_and_unmarks_beta_without_an_approval(db_dsn: str, models_dir: Path,
                                                        tiny_model: object) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        a = add(conn, models_dir, tiny_model, "20260101_000000")
        pending = add(conn, models_dir, tiny_model, "20260102_000000")
        bad = add(conn, models_dir, tiny_model, "20260103_000000", passed=False)
        lifecycle.promote_initial(conn, a, models_dir=models_dir)

    def gept(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gept.cli", *args], capture_output=True,
                              text=True, timeout=60, env=dict(os.environ), check=False)

    marked = gept("models", "beta", str(a), "--reason", "trial", "--json")
    assert marked.returncode == 0, marked.stderr
    assert json.loads(marked.stdout)["beta"] is True
    listed = gept("models", "list")
    assert [line.endswith("beta") for line in listed.stdout.splitlines()[1:]] == [
        False, False, True]                                           # newest first
    waits = gept("models", "beta", str(pending))
    assert waits.returncode == 0
    assert "PENDING, so it serves nobody yet" in waits.stdout
    assert gept("models", "beta", str(bad)).returncode == 2
    assert gept("models", "beta", "999999").returncode == 2
    off = gept("models", "beta", str(a), "--off", "--json")
    assert off.returncode == 0
    assert json.loads(off.stdout)["beta"] is False
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        from gept.registry import beta

        assert beta.beta_models(conn) == [pending]
