"""The host gate and gept-op refuse anything but their fixed verbs and well-formed values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gept.gate import ops
from gept.gate.__main__ import main, parse
from gept.gate.host import HostFacts

H = "ab" * 32


@pytest.mark.parametrize(("argv", "why"), [
    ([], "unknown action"),
    (["restart-everything", "--plan-hash", H, "--approval", "x"], "unknown action"),
    (["restart-postgres", "--plan-hash", H], "--approval is required"),
    (["restart-postgres", "--plan-hash", "abc", "--approval", "x"], "64 hex"),
    (["restart-postgres", "--plan-hash", H, "--approval", "x", "--model-id", "1"],
     "unexpected argument"),
    (["promote-model", "--plan-hash", H, "--approval", "x", "--model-id", "1; id"], "must match"),
    (["rollback-model", "--plan-hash", H, "--approval", "x", "--scope", "$(id)"], "must match"),
    (["restart-postgres", "--plan-hash", H, "--plan-hash", H, "--approval", "x"],
     "unexpected argument"),
])
def test_gate_arguments_are_refused(argv: list[str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse(argv)


def test_gate_refuses_on_an_unconverged_machine(capsys: pytest.CaptureFixture[str]) -> None:
    # No /etc/gept/host.json here: nothing can be approved, nothing runs (exit 2).
    code = main(["restart-postgres", "--plan-hash", H, "--approval", "gept2.a.b"])
    assert code in (2, 3)
    assert "refused" in capsys.readouterr().out


@pytest.fixture
def facts(tmp_path: Path) -> HostFacts:
    root = tmp_path / "app"
    (root / "releases").mkdir(parents=True)
    cron = tmp_path / "gept-inference"
    cron.write_text("*/5 * * * * gept /usr/local/bin/gept infer --role primary\n"
                    "# gept-runbook-stopped: */5 * * * * gept gept infer --role fallback\n")
    return HostFacts("lab/ampere", str(root), str(tmp_path / "collectors"), str(cron),
                     str(tmp_path / "inference.log"))


def test_engine_activate_takes_only_an_installed_root_owned_release(facts: HostFacts,
                                                                    tmp_path: Path) -> None:
    for bad in ("../../tmp/evil", "/tmp/evil", "0.1.0+zz", "0.1.0+abcdef12; id"):
        with pytest.raises(ops.OpError, match="RELEASE must look like"):
            ops.engine_activate(facts, bad)
    release = Path(facts.app_root) / "releases" / "0.1.0+abcdef12"
    release.mkdir()
    if os.geteuid() == 0:  # the tests run as root here: an installed release activates
        with pytest.raises(ops.OpError, match="not a release a converge installed"):
            ops.engine_activate(facts, "0.1.0+abcdef12")  # no .installed marker yet
        (release / ".installed").touch()
        assert "current -> 0.1.0+abcdef12" in ops.engine_activate(facts, "0.1.0+abcdef12")
        assert (Path(facts.app_root) / "current").resolve() == release.resolve()


def test_enable_fallback_uncomments_only_the_fallback_line(facts: HostFacts) -> None:
    assert ops.enable_fallback(facts) == "1 line(s) enabled"
    lines = Path(facts.inference_cron).read_text().splitlines()
    assert lines[1].startswith("*/5")
    assert "--role fallback" in lines[1]
    assert lines[0].endswith("--role primary")


def test_ops_arguments_are_validated(facts: HostFacts) -> None:
    with pytest.raises(ops.OpError, match="NAME must be one of"):
        ops.collector_logs(facts, "5m --follow", "10")
    with pytest.raises(ops.OpError, match="LINES"):
        ops.inference_log(facts, "99999")
    assert ops.main(["reboot"]) == 2
    assert ops.main(["engine-rollback", "extra"]) == 2


def test_engine_call_takes_one_fixed_kind_and_never_reads_the_key_for_a_bad_one(
        facts: HostFacts) -> None:
    with pytest.raises(ops.OpError, match="KIND must be one of") as bad:
        ops.engine_call(facts, "recommendations; cat /etc/gept/engine_api_key")
    assert bad.value.code == 2
    assert ops.main(["engine-call"]) == 2                       # one KIND, not none
    assert ops.main(["engine-call", "item", "extra"]) == 2
