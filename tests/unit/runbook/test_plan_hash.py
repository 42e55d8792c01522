"""The plan hash covers every byte that will run, and the catalogue agents run is pinned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gept.core.errors import InvalidInput, NeedsCoordination
from gept.inventory import Host
from gept.runbook import catalogue, loader
from gept.runbook.plan import make_plan

BASE = """\
name: demo
description: demo
class: danger
zones: [restart-postgres]
targets: ampere
steps:
  - name: stop
    sudo: /usr/bin/systemctl stop recommendation-engine.service
    on_failure: rollback
    retries: {count: 1, delay: 1, until: "^ok"}
    timeout: 30
  - name: restart
    gate: {action: restart-postgres}
  - name: ship
    upload: {src: SRC, dest: /tmp/x, mode: "0600"}
rollback:
  - name: start
    sudo: /usr/bin/systemctl start recommendation-engine.service
"""
HOST = Host("ampere", ("ampere",), {"ssh_user": "gept-agent", "ssh_port": 2221,
                                    "ssh_hostname": "127.0.0.1", "inventory_id": "lab"})


def _hash(tmp_path: Path, text: str, host: Host = HOST, payload: bytes = b"v1") -> str:
    src = tmp_path / "payload"
    src.write_bytes(payload)
    books = tmp_path / "books"
    books.mkdir(exist_ok=True)
    (books / "demo.yaml").write_text(text.replace("SRC", str(src)))
    return make_plan(loader.load_dir(books), "demo", {}, [host]).plan_hash


@pytest.mark.parametrize(("old", "new"), [
    ("    on_failure: rollback\n", "    on_failure: continue\n"),          # failure handling
    ('until: "^ok"', 'until: "^yes"'),                                      # retries/until
    ("count: 1", "count: 2"),
    ("    timeout: 30\n", "    timeout: 31\n"),
    ("    sudo: /usr/bin/systemctl stop", "    run: /usr/bin/systemctl stop"),  # kind
    ("rollback:\n  - name: start\n    sudo: /usr/bin/systemctl start recommendation-engine"
     ".service\n", "rollback:\n  - name: start\n    run: \"true\"\n"),     # the rollback
    ('mode: "0600"', 'mode: "0644"'),
])
def test_every_part_of_a_step_is_in_the_hash(tmp_path: Path, old: str, new: str) -> None:
    assert old in BASE
    assert _hash(tmp_path, BASE) != _hash(tmp_path, BASE.replace(old, new))


def test_uploaded_bytes_hosts_and_inventory_are_in_the_hash(tmp_path: Path) -> None:
    first = _hash(tmp_path, BASE)
    assert first == _hash(tmp_path, BASE)  # stable
    assert first != _hash(tmp_path, BASE, payload=b"v2")
    for change in ({"ssh_port": 2222}, {"ssh_user": "root"}, {"ssh_hostname": "10.0.0.5"},
                   {"inventory_id": "production"}):
        other = Host("ampere", ("ampere",), {**HOST.data, **change})
        assert first != _hash(tmp_path, BASE, host=other), change


def test_the_plan_names_the_approval_to_sign(tmp_path: Path) -> None:
    src = tmp_path / "payload"
    src.write_bytes(b"x")
    books = tmp_path / "books"
    books.mkdir()
    (books / "demo.yaml").write_text(BASE.replace("SRC", str(src)))
    plan = make_plan(loader.load_dir(books), "demo", {}, [HOST]).to_dict()
    assert plan["approvals_needed"] == [{"zone": "restart-postgres",
                                         "plan_hash": plan["plan_hash"],
                                         "hosts": ["lab/ampere"]}]
    gate = next(s for s in plan["steps"] if s["step"] == "restart")
    assert gate["commands"]["ampere"] == "sudo -n -- /usr/local/sbin/gept-gate restart-postgres"


@pytest.mark.parametrize(("step", "why"), [
    ("run: echo '{{ x }}'", "inside quotes"),
    ('run: echo "{{ x }}"', "inside quotes"),
    ("run: sh -c {{ x }}", "shell or interpreter"),
    ("run: bash -c 'echo {{ x }}'", "inside quotes"),
    ("run: eval {{ x }}", "shell or interpreter"),
    ("sudo: /usr/bin/systemctl restart a.service && reboot", "one plain command"),
    ("sudo: /usr/bin/docker-compose ps | grep x", "one plain command"),
    ("sudo: /usr/bin/systemctl restart $(echo postgresql)", "one plain command"),
])
def test_parameters_are_quoted_by_context(tmp_path: Path, step: str, why: str) -> None:
    (tmp_path / "qq.yaml").write_text(f"""\
name: qq
description: q
class: caution
targets: ampere
parameters:
  x: {{type: str}}
steps:
  - name: s
    {step}
""")
    with pytest.raises(InvalidInput) as err:
        loader.load_dir(tmp_path)
    assert why in json.dumps(err.value.to_dict())


def test_sql_meta_commands_are_refused(tmp_path: Path) -> None:
    (tmp_path / "mm.yaml").write_text("""\
name: mm
description: m
class: safe
targets: ampere
steps:
  - name: s
    sql: {query: "\\\\! id"}
""")
    with pytest.raises(InvalidInput) as err:
        loader.load_dir(tmp_path)
    assert "meta-commands" in json.dumps(err.value.to_dict())


# ------------------------------------------------------------------ the pinned catalogue

def _repo(tmp_path: Path) -> Path:
    d = tmp_path / "runbooks"
    d.mkdir()
    for p in sorted(catalogue.RUNBOOKS_DIR.glob("*.yaml")):
        (d / p.name).write_bytes(p.read_bytes())
    (d / "catalogue.lock").write_text(catalogue.pin_text(d))
    return d


def test_the_repositorys_pin_is_current() -> None:
    assert catalogue.PIN_FILE.read_text() == catalogue.pin_text(), \
        "runbooks changed since `gept runbook pin`"


def test_a_changed_pinned_file_is_refused(tmp_path: Path) -> None:
    d = _repo(tmp_path)
    pinned = catalogue.load_pinned(d)
    assert "restart-postgres" in pinned.catalog.runbooks
    rb = d / "restart-engine.yaml"
    rb.write_text(rb.read_text().replace("restart recommendation-engine.service",
                                         "restart postgresql.service"))
    with pytest.raises(InvalidInput, match="changed since the catalogue was pinned"):
        catalogue.load_pinned(d)


def test_a_file_added_later_is_not_in_the_catalogue(tmp_path: Path) -> None:
    d = _repo(tmp_path)
    (d / "late.yaml").write_text((d / "check-health.yaml").read_text().replace(
        "name: check-health", "name: late"))
    pinned = catalogue.load_pinned(d)
    assert "late" not in pinned.catalog.runbooks
    assert pinned.unpinned == ("late.yaml",)


def test_agents_cannot_pick_another_directory(tmp_path: Path) -> None:
    d = _repo(tmp_path)
    with pytest.raises(NeedsCoordination, match="pinned catalogue only"):
        catalogue.load(d, agent=True)
    draft = catalogue.load(d, agent=False)  # a person's draft: named unpinned in plans
    assert draft.digest.startswith("unpinned:")
