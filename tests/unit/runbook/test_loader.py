"""Malformed runbooks are refused with file, line and field (exit 2), before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gept.core.errors import InvalidInput
from gept.runbook import loader
from gept.runbook.model import json_schema

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
name: demo
description: a demo
class: caution
targets: ampere
steps:
  - name: hello
    run: echo hello
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str, name: str = "demo") -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        loader.load_file(_write(tmp_path, name, text))
    assert err.value.exit_code == 2
    return err.value


def test_good_runbook_loads(tmp_path: Path) -> None:
    rb = loader.load_file(_write(tmp_path, "demo", GOOD))
    assert rb.steps[0].kind == "run"


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "    timout: 5\n")
    assert err.details["line"] == 8
    assert err.details["field"] == "steps[0].timout"
    assert str(tmp_path / "demo.yaml") + ":8: steps[0].timout: unknown key" in err.message


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "    timeout: soon\n")
    assert err.details["field"] == "steps[0].timeout"
    assert err.details["line"] == 8


def test_missing_steps(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.split("steps:")[0])
    assert err.details["field"] == "steps"
    assert "required" in err.message.lower()


def test_empty_steps(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.split("steps:")[0] + "steps: []\n")
    assert err.details["field"] == "steps"
    assert err.details["line"] == 5


def test_step_with_two_actions(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "    sudo: echo again\n")
    assert err.details["field"] == "steps[0]"
    assert "exactly one of" in err.message


def test_huge_file_is_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "#" * (loader.MAX_BYTES + 1) + "\n")
    assert "larger than" in err.message


def test_anchor_bomb_is_refused_without_expanding(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))
    err = _error(tmp_path, bomb)
    assert "anchors and aliases are not allowed" in err.message
    assert err.details["line"] == 1


def test_duplicate_key(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("class: caution\n", "class: caution\nclass: safe\n"))
    assert err.details["line"] == 4
    assert "duplicate key" in err.message


def test_not_yaml(tmp_path: Path) -> None:
    err = _error(tmp_path, "name: [unclosed\n")
    assert "not valid YAML" in err.message


def test_name_must_match_file(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD, name="other")
    assert err.details["field"] == "name"


def test_undeclared_danger_zone_is_a_validation_error(tmp_path: Path) -> None:
    text = GOOD.replace("run: echo hello", "sudo: systemctl restart postgresql")
    err = _error(tmp_path, text)
    assert err.details["line"] == 7
    assert err.details["field"] == "steps[0].sudo"
    assert "restart-postgres" in err.message


@pytest.mark.parametrize(("command", "zone"), [
    ("psql -c 'ALTER TABLE predictions ADD COLUMN x int'", "predictions-schema"),
    ("gept models promote 4", "model-registry"),
    ("psql -c 'UPDATE model_registry SET status = 1'", "model-registry"),
    ("sed -i s/300/60/ /opt/gept/collectors/.env", "collector-intervals"),
    ("pg_ctlcluster 15 main stop", "restart-postgres"),
])
def test_each_zone_is_detected(tmp_path: Path, command: str, zone: str) -> None:
    err = _error(tmp_path, GOOD.replace("echo hello", json.dumps(command)))
    assert zone in err.message


def test_stopping_hydra_inference_needs_hydra(tmp_path: Path) -> None:
    on_hydra = GOOD.replace("targets: ampere", "targets: hydra").replace(
        "run: echo hello", "sudo: sed -i 's/^/#/' /etc/cron.d/gept-inference")
    assert "stop-hydra-inference" in _error(tmp_path, on_hydra).message


def test_safe_runbook_may_not_mutate(tmp_path: Path) -> None:
    text = GOOD.replace("class: caution", "class: safe").replace(
        "run: echo hello", "sudo: systemctl restart recommendation-engine")
    assert "changes something" in _error(tmp_path, text).message


def test_class_and_zones_must_agree(tmp_path: Path) -> None:
    text = GOOD.replace("class: caution", "class: caution\nzones: [restart-postgres]")
    assert "must be class danger" in _error(tmp_path, text).message


def test_cycles_in_references_are_refused(tmp_path: Path) -> None:
    for a, b in (("alpha", "beta"), ("beta", "gamma"), ("gamma", "alpha")):
        _write(tmp_path, a, GOOD.replace("demo", a) + f"  - name: more\n    use:\n"
                                                      f"      runbook: {b}\n")
    with pytest.raises(InvalidInput) as err:
        loader.load_dir(tmp_path)
    assert "cycle in runbook references" in err.value.message
    assert "alpha -> beta -> gamma -> alpha" in json.dumps(err.value.details)


def test_unknown_reference(tmp_path: Path) -> None:
    _write(tmp_path, "demo", GOOD + "  - name: more\n    use:\n      runbook: nowhere\n")
    with pytest.raises(InvalidInput, match="unknown runbook 'nowhere'"):
        loader.load_dir(tmp_path)


def test_every_repository_runbook_validates() -> None:
    catalog = loader.load_dir(REPO / "runbooks")
    assert {"check-health", "restart-engine", "deploy-engine", "rollback-engine",
            "deploy-model", "restart-postgres", "enable-fallback", "stop-hydra-inference",
            "restart-collector", "show-logs", "triage-staleness", "triage-engine",
            "triage-database", "triage-collectors"} <= set(catalog.runbooks)
    danger = {n for n, rb in catalog.runbooks.items() if rb.class_ == "danger"}
    assert {"deploy-model", "restart-postgres", "stop-hydra-inference",
            "restore-postgres"} <= danger
    # A danger runbook names its zones; no other class may.
    assert danger == {n for n, rb in catalog.runbooks.items() if rb.zones}


def test_schema_json_is_up_to_date() -> None:
    on_disk = json.loads((REPO / "runbooks" / "schema.json").read_text())
    assert on_disk == json_schema(), "run `gept runbook schema --write`"


def test_validate_cli_exit_2_with_location(tmp_path: Path) -> None:
    _write(tmp_path, "demo", GOOD + "    on_failure: explode\n")
    proc = subprocess.run([sys.executable, "-m", "gept.cli", "runbook", "validate", "--dir",
                           str(tmp_path), "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    body = json.loads(proc.stdout)
    assert body["line"] == 8
    assert body["field"] == "steps[0].on_failure"



SEVERAL = """\
name: demo
description: five mistakes, the typo among them
class: sometimes
targets: ampere
steps:
  - name: restart
    run: echo restart
    timout: 60
  - name: wait
    wait_until:
      run: echo ok
      timeout: many
verify:
  - name: health
    run: echo ok
    retries: 3
"""


def test_validate_prints_every_problem_with_file_line_and_field(tmp_path: Path) -> None:
    broken = _write(tmp_path, "demo", SEVERAL)
    other = _write(tmp_path, "other", GOOD.replace("demo", "other") + "    bogus: 1\n")
    proc = subprocess.run([sys.executable, "-m", "gept.cli", "runbook", "validate",
                           str(broken), str(other)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "more)" not in proc.stderr
    for line, field in ((3, "class"), (8, "steps[0].timout"),
                        (12, "steps[1].wait_until.timeout"), (16, "verify[0].retries")):
        assert f"{broken}:{line}: {field}: " in proc.stderr, (field, proc.stderr)
    assert f"{other}:8: steps[0].bogus: unknown key" in proc.stderr  # the second file too
    body = json.loads(subprocess.run(
        [sys.executable, "-m", "gept.cli", "runbook", "validate", "--dir", str(tmp_path),
         "--json"], capture_output=True, text=True, timeout=60).stdout)
    assert [(p["line"], p["field"]) for p in body["problems"]] == [
        (3, "class"), (8, "steps[0].timout"), (12, "steps[1].wait_until.timeout"),
        (16, "verify[0].retries"), (8, "steps[0].bogus")]


def test_reference_problems_point_at_the_use_line(tmp_path: Path) -> None:
    _write(tmp_path, "demo", GOOD + "  - name: more\n    use:\n      runbook: nowhere\n")
    with pytest.raises(InvalidInput) as err:
        loader.load_dir(tmp_path)
    (problem,) = err.value.details["problems"]
    assert (problem["line"], problem["field"]) == (10, "steps[1].use.runbook")
