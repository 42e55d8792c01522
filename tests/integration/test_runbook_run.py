"""The runner over real SSH (an sshd on loopback): steps, retries, timeouts, rollback,
verification, guards, locks, audit, GroupResult-style reporting, and malformed runbooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gept.guards import audit
from gept.testing.person import Person
from gept.testing.sshd import LoopbackSshd

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    with LoopbackSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Person]:
    """alice may approve; mallory has a key too, but not an allowed one."""
    d = tmp_path_factory.mktemp("people")
    return {n: Person.create(d, n) for n in ("alice", "mallory")}


@pytest.fixture
def world(sshd: LoopbackSshd, tmp_path: Path, people: dict[str, Person]) -> dict[str, Path]:
    """A runbook dir, an inventory (ampere + hydra on the loopback sshd, alice approves), a
    work dir, and where the controller's audit trail stood when the test began."""
    work = tmp_path / "work"
    work.mkdir()
    books = tmp_path / "runbooks"
    books.mkdir()
    inv = sshd.write_inventory(tmp_path / "inventory.py", ["ampere", "hydra"], tmp_path / "hosts",
                               data={"approvers": {"alice": people["alice"].public}})
    mark = tmp_path / "trail-mark"
    mark.write_text(str(audit.ROOT_LOG.stat().st_size if audit.ROOT_LOG.exists() else 0))
    pids = tmp_path / "pids"
    pids.write_text("")
    return {"work": work, "books": books, "inv": inv, "hosts": tmp_path / "hosts",
            "mark": mark, "pids": pids}


def book(world: dict[str, Path], name: str, text: str) -> None:
    (world["books"] / f"{name}.yaml").write_text(text.replace("WORK", str(world["work"])))


def gept(world: dict[str, Path], *args: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "gept.cli", *args]
    if args[0] == "runbook":
        cmd += ["--dir", str(world["books"])]
        if args[1] in ("plan", "run"):
            cmd += ["--inventory", str(world["inv"])]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})}) as proc:
        # The trail is the machine's: other tests (and other people's runs) write to it at
        # the same time, so this test reads back only what its own processes wrote.
        with world["pids"].open("a") as fh:
            fh.write(f"{proc.pid}\n")
        try:
            out, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def body(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"not JSON (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")
    return data


def trail(world: dict[str, Path]) -> str:
    """What the runs of this test wrote to the controller's trail (root's, append-only)."""
    if not audit.ROOT_LOG.exists():
        return ""
    with audit.ROOT_LOG.open() as fh:
        fh.seek(int(world["mark"].read_text()))
        return fh.read()


def host_audit(world: dict[str, Path], host: str = "ampere") -> list[dict[str, Any]]:
    """This test's audit records about ``host`` (or about the whole run)."""
    ours = {int(p) for p in world["pids"].read_text().split()}
    rows = [json.loads(x) for x in trail(world).splitlines() if x.strip()]
    return [r for r in rows if r.get("pid") in ours and r.get("host", host) == host]


def approve(world: dict[str, Path], person: Person, runbook: str) -> str:
    """A person approves what `gept runbook plan --json` printed (the CLI, end to end)."""
    plan = world["work"].parent / f"{runbook}.plan.json"
    plan.write_text(gept(world, "runbook", "plan", runbook, "--json").stdout)
    proc = gept(world, "coordinate", "approve", "--plan", str(plan), "--reason", "test window",
                "--ttl", "5m", "--key", str(person.key), "--json")
    assert proc.returncode == 0, proc.stderr
    return str(body(proc)["approvals"][0]["approval"])


HEAD = """\
name: {name}
description: test runbook
class: caution
targets: ampere
"""


def test_steps_outputs_retries_and_verification(world: dict[str, Path]) -> None:
    book(world, "work", HEAD.format(name="work") + """\
parameters:
  message: {type: str}
steps:
  - name: write
    run: printf '%s' {{ message }} > WORK/message
  - name: flaky
    run: n=$(cat WORK/n 2>/dev/null || echo 0); echo $((n+1)) > WORK/n; test $n -ge 2
    retries: {count: 3, delay: 0.1}
  - name: read
    run: cat WORK/message
    output: message
verify:
  - name: still-there
    run: test -s WORK/message
""")
    evil = "hi'; touch WORK/pwned; echo '"
    proc = gept(world, "runbook", "run", "work", "-p", f"message={evil}", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = body(proc)
    assert result["status"] == "ok"
    assert result["plan_hash"] == body(gept(world, "runbook", "plan", "work", "-p",
                                            f"message={evil}", "--json"))["plan_hash"]
    steps = {s["step"]: s for s in result["hosts"]["ampere"]["steps"]}
    assert steps["flaky"]["attempts"] == 3
    assert result["hosts"]["ampere"]["outputs"]["message"] == evil
    assert not (world["work"] / "pwned").exists()  # the parameter was data, not code
    assert result["verification"] == [{"host": "ampere", "step": "still-there", "ok": True,
                                       "error": None}]
    events = [e["event"] for e in host_audit(world)]
    assert events[0] == "requested"
    assert events[-1] == "finished"
    assert events.count("step") == 4


def test_timeout_then_rollback_and_exit_1(world: dict[str, Path]) -> None:
    book(world, "deploy", HEAD.format(name="deploy") + """\
steps:
  - name: switch
    run: echo new > WORK/current
  - name: gate
    run: sleep 30
    timeout: 1
    on_failure: rollback
  - name: never
    run: touch WORK/never
rollback:
  - name: switch-back
    run: echo old > WORK/current
""")
    proc = gept(world, "runbook", "run", "deploy", "--json")
    assert proc.returncode == 1
    result = body(proc)
    assert result["status"] == "rolled_back"
    assert result["rollback_taken"] is True
    gate = next(s for s in result["hosts"]["ampere"]["steps"] if s["step"] == "gate")
    assert "timed out" in gate["error"]
    assert (world["work"] / "current").read_text().strip() == "old"
    assert not (world["work"] / "never").exists()
    assert "rolled_back" in [e["event"] for e in host_audit(world)]


def test_failed_precondition_changes_nothing(world: dict[str, Path]) -> None:
    book(world, "guarded", HEAD.format(name="guarded") + """\
preconditions:
  - name: ready
    run: test -e WORK/ready
steps:
  - name: change
    run: touch WORK/changed
""")
    proc = gept(world, "runbook", "run", "guarded", "--json")
    assert proc.returncode == 1
    assert body(proc)["status"] == "precondition_failed"
    assert not (world["work"] / "changed").exists()


def test_every_host_is_reported_before_failing(world: dict[str, Path]) -> None:
    book(world, "both", HEAD.format(name="both").replace("targets: ampere", "targets: all")
         + """\
steps:
  - name: differs
    run: test {{ host_name }} != hydra
  - name: after
    run: "true"
""")
    proc = gept(world, "runbook", "run", "both", "--json")
    assert proc.returncode == 1
    result = body(proc)
    assert result["status"] == "failed"
    assert [s["ok"] for s in result["hosts"]["ampere"]["steps"]] == [True]
    assert [s["ok"] for s in result["hosts"]["hydra"]["steps"]] == [False]


DANGER = """\
name: danger-demo
description: pretends to restart postgresql
class: danger
zones: [restart-postgres]
targets: ampere
steps:
  - name: act
    run: touch WORK/acted
"""


def test_danger_refused_without_approval_then_single_use(world: dict[str, Path],
                                                        people: dict[str, Person]) -> None:
    book(world, "danger-demo", DANGER)
    refused = gept(world, "runbook", "run", "danger-demo", "--json")
    assert refused.returncode == 3
    answer = body(refused)
    assert answer["status"] == "needs_coordination"
    assert answer["zone"] == "restart-postgres"
    assert answer["hosts"] == ["loopback/ampere"]
    assert "gept coordinate approve" in answer["how"]
    assert not (world["work"] / "acted").exists()
    assert "step" not in [e["event"] for e in host_audit(world)]  # refused before connecting

    text = approve(world, people["alice"], "danger-demo")
    ok = gept(world, "runbook", "run", "danger-demo", "--approval", text, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (world["work"] / "acted").exists()
    replay = gept(world, "runbook", "run", "danger-demo", "--approval", text, "--json")
    assert replay.returncode == 3
    assert "already used" in body(replay)["message"]
    assert text not in trail(world)
    events = [e["event"] for e in host_audit(world)]
    for event in ("requested", "refused", "approval_signed", "approval_presented",
                  "approved_use", "step", "finished"):
        assert event in events, event


def test_approvals_that_do_not_fit_are_refused(world: dict[str, Path],
                                               people: dict[str, Person]) -> None:
    book(world, "danger-demo", DANGER)
    from gept.guards.plans import plan_hash

    other_plan = people["alice"].approve("restart-postgres", plan_hash({"x": 1}),
                                         ["loopback/ampere"])
    own_key = approve(world, people["mallory"], "danger-demo")  # the agent signing for itself
    other_zone = people["alice"].approve("model-registry", body(gept(
        world, "runbook", "plan", "danger-demo", "--json"))["plan_hash"], ["loopback/ampere"])
    for text, why in ((other_plan, "another plan"), (own_key, "not signed by an allowed"),
                      (other_zone, "is for zone 'model-registry'"), ("gept1.abc.def", "not an")):
        proc = gept(world, "runbook", "run", "danger-demo", "--approval", text, "--json")
        assert proc.returncode == 3, proc.stdout
        assert why in body(proc)["message"]
    assert not (world["work"] / "acted").exists()


def test_an_approval_does_not_survive_an_edited_plan(world: dict[str, Path],
                                                     people: dict[str, Person]) -> None:
    # Removing the rollback (or changing a retry, a timeout, a step's kind) changes the hash.
    book(world, "danger-demo", DANGER.replace("    run: touch WORK/acted", """\
    run: touch WORK/acted
    on_failure: rollback
rollback:
  - name: undo
    run: rm -f WORK/acted"""))
    text = approve(world, people["alice"], "danger-demo")
    book(world, "danger-demo", DANGER)
    proc = gept(world, "runbook", "run", "danger-demo", "--approval", text, "--json")
    assert proc.returncode == 3
    assert "another plan" in body(proc)["message"]


SLOW = HEAD.format(name="slow") + """\
steps:
  - name: hold
    run: touch WORK/started-$$; sleep 4
"""


def test_concurrent_runs_one_gets_exit_4_naming_the_holder(world: dict[str, Path]) -> None:
    book(world, "slow", SLOW)
    cmd = [sys.executable, "-m", "gept.cli", "runbook", "run", "slow", "--json", "--dir",
           str(world["books"]), "--inventory", str(world["inv"])]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(world["work"].glob("started-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    second = gept(world, "runbook", "run", "slow", "--json")
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert second.returncode == 4
    holder = body(second)
    assert holder["status"] == "locked"
    assert holder["holder"]["run_id"] == json.loads(out)["run_id"]
    for key in ("pid", "user", "since"):
        assert holder["holder"][key]


def test_host_lock_held_by_another_controller(world: dict[str, Path]) -> None:
    book(world, "slow", SLOW.replace("sleep 4", "true"))
    lock = world["hosts"] / "ampere" / "locks" / "slow.lock"
    lock.mkdir(parents=True)
    other = {"run_id": "elsewhere-1", "runbook": "slow", "pid": 1, "user": "alice",
             "controller": "laptop", "since": "2026-01-01T00:00:00Z",
             "expires": int(time.time()) + 600}
    (lock / "holder.json").write_text(json.dumps(other))
    proc = gept(world, "runbook", "run", "slow", "--json")
    assert proc.returncode == 4
    assert body(proc)["holder"]["run_id"] == "elsewhere-1"
    assert "alice" in body(proc)["message"]
    # An expired holder (its controller died) is broken and the run proceeds.
    other["expires"] = int(time.time()) - 1
    (lock / "holder.json").write_text(json.dumps(other))
    proc = gept(world, "runbook", "run", "slow", "--json")
    assert proc.returncode == 0, proc.stdout
    assert not lock.exists()  # released at the end
    assert "lock_broken" in [e["event"] for e in host_audit(world)]


def test_secrets_are_redacted_everywhere(world: dict[str, Path]) -> None:
    book(world, "secret", HEAD.format(name="secret") + """\
parameters:
  password: {type: str, secret: true}
steps:
  - name: use
    run: echo {{ password }} > WORK/secret
  - name: show
    run: cat WORK/secret
""")
    proc = gept(world, "runbook", "run", "secret", "-p", "password=s3cr3t-value", "--json")
    assert proc.returncode == 0
    assert (world["work"] / "secret").read_text().strip() == "s3cr3t-value"
    assert "s3cr3t-value" not in proc.stdout
    assert "s3cr3t-value" not in trail(world)


@pytest.mark.parametrize("bad", [
    "  - name: extra\n    run: touch WORK/ran\n    bogus: 1\n",
    "  - name: typed\n    run: touch WORK/ran\n    retries: {count: many}\n",
    "  - name: both\n    run: touch WORK/ran\n    local: touch WORK/ran\n",
])
def test_malformed_runbook_exit_2_and_nothing_runs(world: dict[str, Path], bad: str) -> None:
    book(world, "broken", HEAD.format(name="broken") + "steps:\n  - name: first\n"
                                                       "    run: touch WORK/ran\n" + bad)
    proc = gept(world, "runbook", "run", "broken", "--json")
    assert proc.returncode == 2
    error = body(proc)
    assert error["file"].endswith("broken.yaml")
    assert error["line"] >= 7
    assert error["field"].startswith("steps[1]")
    assert not (world["work"] / "ran").exists()
    assert host_audit(world) == []


def test_injection_through_enum_fails_validation(world: dict[str, Path]) -> None:
    book(world, "pick", HEAD.format(name="pick") + """\
parameters:
  which: {type: enum, enum: [a, b]}
steps:
  - name: touch
    run: touch WORK/{{ which }}
""")
    proc = gept(world, "runbook", "run", "pick", "-p", "which=a; touch WORK/pwned", "--json")
    assert proc.returncode == 2
    assert body(proc)["field"] == "params.which"
    assert list(world["work"].iterdir()) == []


def test_unknown_target_is_exit_2(world: dict[str, Path]) -> None:
    book(world, "slow", SLOW)
    proc = gept(world, "runbook", "plan", "slow", "--target", "nowhere", "--json")
    assert proc.returncode == 2
    assert "nowhere" in body(proc)["message"]


def test_wait_until_upload_local_use_and_verdict(world: dict[str, Path],
                                                 tmp_path: Path) -> None:
    """In-process (no CLI start-up): the remaining step kinds and triage verdicts."""
    from gept.runbook import service

    payload = tmp_path / "payload.txt"
    payload.write_text("artifact\n")
    book(world, "probe", HEAD.format(name="probe").replace("class: caution", "class: safe")
         + """\
lock: {enabled: false}
parameters:
  name: {type: str, pattern: "[a-z]+"}
steps:
  - name: present
    run: test -e WORK/{{ name }}
    on_failure: continue
""")
    book(world, "kinds", HEAD.format(name="kinds") + """\
steps:
  - name: later
    run: nohup sh -c 'sleep 1; touch WORK/ready' >/dev/null 2>&1 &
  - name: wait-ready
    wait_until:
      run: test -e WORK/ready
      timeout: 30
      interval: 0.2
  - name: upload
    upload: {src: PAYLOAD, dest: WORK/uploaded.txt, mode: "0600"}
  - name: on-controller
    local: echo controller > WORK/local.txt
  - name: never-ready
    wait_until:
      run: test -e WORK/never
      timeout: 1
      interval: 0.2
    on_failure: continue
verify:
  - name: ready-exists
    use:
      runbook: probe
      params: {name: ready}
verdict:
  - when: {failed: [never-ready]}
    verdict: never became ready
    next: probe
  - verdict: all good
""".replace("PAYLOAD", str(payload)))
    result = service.run("kinds", {}, inventory=world["inv"], directory=world["books"])
    steps = {s["step"]: s for s in result["hosts"]["ampere"]["steps"]}
    assert steps["wait-ready"]["ok"]
    assert "not ready after 1s" in steps["never-ready"]["error"]
    assert (world["work"] / "uploaded.txt").read_text() == "artifact\n"
    assert oct((world["work"] / "uploaded.txt").stat().st_mode & 0o777) == "0o600"
    assert (world["work"] / "local.txt").read_text() == "controller\n"
    assert steps["ready-exists/present"]["ok"]  # included steps are named <use>/<step>
    assert result["verification"][0]["ok"] is True
    assert result["verdict"] == {"verdict": "never became ready", "next": "probe"}
    assert result["status"] == "ok"  # a triage-style runbook: the verdict is the outcome


def test_unreachable_host_is_reported_with_the_others(world: dict[str, Path]) -> None:
    from gept.testing.pgserver import free_port

    text = world["inv"].read_text()
    world["inv"].write_text(text + f"ghost = [('ghost', {{'ssh_hostname': '127.0.0.1', "
                                   f"'ssh_port': {free_port()}, 'ssh_user': 'root'}})]\n")
    book(world, "wide", HEAD.format(name="wide").replace("targets: ampere",
                                                         "targets: ampere,ghost") + """\
steps:
  - name: first
    run: touch WORK/first
  - name: second
    run: touch WORK/second
""")
    proc = gept(world, "runbook", "run", "wide", "--json")
    assert proc.returncode == 1
    result = body(proc)
    assert result["status"] == "failed"
    assert result["hosts"]["ampere"]["steps"][0]["ok"] is True
    ghost = result["hosts"]["ghost"]["steps"][0]
    assert ghost["ok"] is False
    assert "unreachable" in ghost["error"]
    assert (world["work"] / "first").exists()
    assert not (world["work"] / "second").exists()  # aborted after the failed step


def test_failed_precondition_does_not_burn_the_approval(world: dict[str, Path],
                                                        people: dict[str, Person]) -> None:
    book(world, "danger-demo", DANGER.replace("steps:", """preconditions:
  - name: fallback-on
    run: test -e WORK/fallback
steps:"""))
    text = approve(world, people["alice"], "danger-demo")
    proc = gept(world, "runbook", "run", "danger-demo", "--approval", text, "--json")
    assert proc.returncode == 1
    assert body(proc)["status"] == "precondition_failed"
    (world["work"] / "fallback").touch()
    proc = gept(world, "runbook", "run", "danger-demo", "--approval", text, "--json")
    assert proc.returncode == 0, proc.stdout
    assert (world["work"] / "acted").exists()
