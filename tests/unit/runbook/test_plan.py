"""Plans: parameters validated, values always one shell word, hashes bound to the plan."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from gept.core.errors import InvalidInput
from gept.inventory import Host
from gept.runbook import loader
from gept.runbook.plan import Action, Plan, make_plan

RB = """\
name: demo
description: demo
class: caution
targets: ampere
parameters:
  message: {type: str}
  lines: {type: int, default: 10, min: 1, max: 100}
  color: {type: enum, enum: [red, blue], default: red}
  version: {type: str, pattern: "[0-9.]+", default: "1.0"}
  password: {type: str, secret: true, default: hunter2}
  dry: {type: bool, default: false}
steps:
  - name: say
    run: echo {{ message }} {{ lines }} {{ color }} {{ dry }}
  - name: query
    sql:
      query: SELECT {{ message }}, {{ lines }}
  - name: probe
    http:
      url: http://127.0.0.1:8000/items/{{ message }}
  - name: login
    run: login --password {{ password }}
"""

AMPERE = Host("ampere", ("ampere",), {"ssh_user": "deploy"})
ROOT = Host("ampere", ("ampere",), {"ssh_user": "root"})


@pytest.fixture
def catalog(tmp_path: Path) -> loader.Catalog:
    (tmp_path / "demo.yaml").write_text(RB)
    return loader.load_dir(tmp_path)


def _cmd(plan: Plan, step: str) -> Action:
    return next(s for s in plan.steps if s.name == step).actions["ampere"]


@pytest.mark.parametrize("evil", [
    "x; touch /tmp/pwned", "$(touch /tmp/pwned)", "`id`", "a' ; rm -rf / ; '", "--help",
    "a b", "'", '"', "\\", "*",
])
def test_injection_is_passed_as_one_word(catalog: loader.Catalog, evil: str) -> None:
    plan = make_plan(catalog, "demo", {"message": evil}, [AMPERE])
    command = _cmd(plan, "say").secret_command
    words = shlex.split(command)
    assert words[1] == evil
    # And a real shell agrees: the value comes back verbatim, nothing else runs.
    out = subprocess.run(["sh", "-c", command.replace("echo", "printf '%s\\n'", 1)],
                         capture_output=True, text=True, timeout=10, check=True)
    assert out.stdout.splitlines()[0] == evil


def test_sql_and_url_contexts_escape_too(catalog: loader.Catalog) -> None:
    plan = make_plan(catalog, "demo", {"message": "x' OR '1'='1"}, [AMPERE])
    query = shlex.split(_cmd(plan, "query").secret_command)[-1]
    assert query == "SELECT 'x'' OR ''1''=''1', 10"
    url = shlex.split(_cmd(plan, "probe").secret_command)[-1]
    assert url == "http://127.0.0.1:8000/items/x%27%20OR%20%271%27%3D%271"


@pytest.mark.parametrize(("params", "field"), [
    ({"message": "m", "lines": "ten"}, "params.lines"),
    ({"message": "m", "lines": "1000"}, "params.lines"),
    ({"message": "m", "color": "green"}, "params.color"),
    ({"message": "m", "version": "1.0; id"}, "params.version"),
    ({"message": "m", "dry": "maybe"}, "params.dry"),
    ({"message": "line\nbreak"}, "params.message"),
    ({}, "params.message"),
    ({"message": "m", "nope": "1"}, "params.nope"),
])
def test_bad_parameters_name_the_field(catalog: loader.Catalog, params: dict[str, str],
                                       field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        make_plan(catalog, "demo", params, [AMPERE])
    assert err.value.details["field"] == field


def test_secret_never_shown_but_changes_the_hash(catalog: loader.Catalog) -> None:
    a = make_plan(catalog, "demo", {"message": "m"}, [AMPERE])
    b = make_plan(catalog, "demo", {"message": "m", "password": "other"}, [AMPERE])
    assert "hunter2" not in str(a.to_dict())
    assert "hunter2" in _cmd(a, "login").secret_command
    assert a.plan_hash != b.plan_hash


def test_hash_is_stable_and_bound_to_params_and_hosts(catalog: loader.Catalog) -> None:
    a = make_plan(catalog, "demo", {"message": "m"}, [AMPERE])
    assert a.plan_hash == make_plan(catalog, "demo", {"message": "m"}, [AMPERE]).plan_hash
    assert a.plan_hash != make_plan(catalog, "demo", {"message": "n"}, [AMPERE]).plan_hash
    hydra = Host("hydra", ("hydra",), {"ssh_user": "deploy"})
    assert a.plan_hash != make_plan(catalog, "demo", {"message": "m"},
                                    [AMPERE, hydra]).plan_hash


def test_sudo_never_prompts(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(RB.replace("run: echo {{ message }}",
                                                   "sudo: echo {{ message }}"))
    catalog = loader.load_dir(tmp_path)
    plan = make_plan(catalog, "demo", {"message": "m"}, [AMPERE])
    # No shell around it: sudoers allows exact commands, so sudo is asked for exactly this.
    assert _cmd(plan, "say").command == "sudo -n -- echo m 10 red false"
    as_root = make_plan(catalog, "demo", {"message": "m"}, [ROOT])
    assert _cmd(as_root, "say").command.startswith("echo m")


def test_rendered_command_cannot_smuggle_a_zone(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(RB.replace("echo {{ message }}",
                                                   "systemctl {{ message }} postgresql"))
    catalog = loader.load_dir(tmp_path)
    with pytest.raises(InvalidInput, match="restart-postgres"):
        make_plan(catalog, "demo", {"message": "restart"}, [AMPERE])


def test_pyinfra_step_converges_only_the_step_hosts(tmp_path: Path) -> None:
    (tmp_path / "converge.yaml").write_text("""\
name: converge
description: converge ampere
class: caution
targets: ampere
steps:
  - name: converge
    pyinfra: {deploy: deploys/ampere.py}
""")
    plan = make_plan(loader.load_dir(tmp_path), "converge", {}, [AMPERE],
                     inventory=Path("inventory/lab.py"))
    action = plan.steps[0].actions["ampere"]
    assert action.controller is True
    assert shlex.split(action.command) == ["pyinfra", "-y", "--limit", "ampere",
                                           "inventory/lab.py", "deploys/ampere.py"]
