"""Run a plan: guards, locks, preconditions, steps, rollback, verification, audit, one result.

Order of a run, and why:

1. ``requested`` is audited; the controller lock is taken (local only: a refused run never
   touches a host).
2. Danger zones: a courtesy check (:func:`gept.guards.coordination.check`) refuses (exit 3)
   unless a person's approval for this zone, this plan hash and these hosts is presented,
   verified against the inventory's approvers, before anything connects. The boundary is
   on the hosts: each ``gate`` step hands the approval to the host's gate, which verifies it
   again against the host's own allowed signers and spends its nonce.
3. Connect to every host and take the host locks (``mkdir``; held → exit 4 naming the holder).
4. Preconditions on all hosts; a failure stops the run before anything changes. Only then
   is the approval spent in this account's ledger, so a failed precondition does not burn
   it (the host's gate spends it again in root's ledger there: the one that counts).
5. Steps, each on all its hosts (in parallel), every host reported (Fabric ``GroupResult``
   style) before a failure decides what happens: ``abort``, ``continue`` or ``rollback``.
6. Verification steps; then the verdict rules (triage runbooks).
7. Locks released; the host's audit lines are appended in the same round trip.

Example:
    >>> result = run_plan(plan, token=None)  # doctest: +SKIP
    >>> result["status"], result["plan_hash"]  # doctest: +SKIP
    ('ok', '5f1c...')
"""

from __future__ import annotations

import hashlib
import json
import secrets as pysecrets
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gept.core.errors import InvalidInput, Locked
from gept.guards import audit as trail
from gept.guards.coordination import check as check_approval
from gept.guards.coordination import pick
from gept.guards.coordination import require as require_approval
from gept.guards.ledger import default_ledger
from gept.guards.signers import Signers
from gept.inventory import Host
from gept.runbook import lock as locks
from gept.runbook.plan import Action, Plan, StepPlan, public_params
from gept.runbook.transport import Outcome, Session, run_local
from gept.runbook.verdict import evaluate_verdict, judge

TAIL = 2000
OUTPUT_MAX = 4000


def new_run_id() -> str:
    """A sortable, unique run id: ``20260101T120000Z-1a2b3c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + pysecrets.token_hex(3)


class _Run:
    def __init__(self, plan: Plan, run_id: str,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.plan = plan
        self.on_event = on_event
        self.unreachable: dict[str, str] = {}
        self.rb = plan.runbook
        self.run_id = run_id
        self.secrets = [str(v) for k, v in plan.params.items()
                        if self.rb.parameters[k].secret and str(v)]
        self.sessions: dict[str, Session] = {n: Session(h) for n, h in plan.host_index.items()}
        self.hosts: dict[str, dict[str, Any]] = {n: {"steps": [], "outputs": {}}
                                                 for n in self.sessions}
        self.host_audit: dict[str, list[str]] = {n: [] for n in self.sessions}
        self.verification: list[dict[str, Any]] = []
        self.failed_steps: set[str] = set()
        self.passed: dict[str, bool] = {}
        self.approvals: list[str] = []

    # ------------------------------------------------------------------ audit helpers
    def _scrub(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, "***")
        return text

    def audit(self, event: str, host: str | None = None, **fields: Any) -> None:
        record = trail.record(event, run_id=self.run_id, runbook=self.rb.name,
                              plan_hash=self.plan.plan_hash, **({"host": host} if host else {}),
                              **fields)
        line = json.dumps(record, default=str)
        for name in ([host] if host else list(self.host_audit)):
            if name in self.host_audit:
                self.host_audit[name].append(line)

    # ------------------------------------------------------------------ execution
    def say(self, text: str) -> None:
        if self.on_event is not None:
            self.on_event(text)

    def execute(self, step: StepPlan, host: str, action: Action) -> dict[str, Any]:
        if host in self.unreachable and not action.controller:
            return {"section": step.section, "step": step.name, "kind": step.kind, "ok": False,
                    "exit": None, "attempts": 0, "duration_s": 0.0, "command": action.command,
                    "stdout": "", "stderr": "",
                    "error": f"host unreachable: {self.unreachable[host]}"}
        attempts = 0
        started = time.monotonic()
        max_attempts = 1 + step.retries.count
        outcome = Outcome(None, "", "", 0.0, "not run")
        ok = False
        why = ""
        while attempts < max_attempts:
            attempts += 1
            outcome, ok, why = self._attempt(step, host, action)
            if ok or attempts >= max_attempts:
                break
            time.sleep(step.retries.delay)
        result: dict[str, Any] = {
            "section": step.section, "step": step.name, "kind": step.kind, "ok": ok,
            "exit": outcome.exit, "attempts": attempts,
            "duration_s": round(time.monotonic() - started, 3),
            "command": action.command,
            "stdout": self._scrub(outcome.stdout[-TAIL:]),
            "stderr": self._scrub(outcome.stderr[-TAIL:]),
        }
        if not ok:
            result["error"] = why
        if step.output:
            self.hosts[host]["outputs"][step.output] = self._scrub(
                outcome.stdout.strip()[:OUTPUT_MAX])
        return result

    def _issue(self, host: str, action: Action, timeout: float) -> Outcome:
        if action.controller:
            return run_local(action.secret_command, timeout)
        session = self.sessions[host]
        if action.upload is not None:
            src, dest, mode = action.upload
            data = Path(src).read_bytes()
            # What was approved is what is sent: the bytes are read once and must be those
            # whose sha256 the plan hash covers.
            if hashlib.sha256(data).hexdigest() != action.upload_sha256:
                return Outcome(None, "", "", 0.0, f"{src} changed since it was planned "
                               "(re-plan; an approval covers the planned bytes only)")
            return session.put_bytes(data, dest, mode, timeout)
        command = action.secret_command
        if action.gate_zone is not None:
            approval = pick(action.gate_zone, self.approvals) or ""
            command += (f" --plan-hash {self.plan.plan_hash} --approval "
                        f"{shlex.quote(approval)}")
        return session.run(command, timeout)

    def _attempt(self, step: StepPlan, host: str, action: Action) -> tuple[Outcome, bool, str]:
        if action.wait_timeout is not None:
            deadline = time.monotonic() + action.wait_timeout
            tries = 0
            while True:  # bounded by the deadline and by a hard count
                tries += 1
                remaining = max(1.0, deadline - time.monotonic())
                out = self._issue(host, action, min(step.timeout, remaining))
                ok, why = judge(out, action)
                if ok or time.monotonic() >= deadline or tries >= 10_000:
                    if not ok:
                        why = f"not ready after {action.wait_timeout:g}s ({tries} tries): {why}"
                    return out, ok, why
                time.sleep(min(action.wait_interval or 2, max(0, deadline - time.monotonic())))
        out = self._issue(host, action, step.timeout)
        ok, why = judge(out, action)
        return out, ok, why

    def run_step(self, step: StepPlan) -> bool:
        """Run one step on all its hosts; record every host; True when all succeeded."""
        items = list(step.actions.items())
        if len(items) == 1:
            results = [self.execute(step, items[0][0], items[0][1])]
        else:
            with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
                results = list(pool.map(lambda kv: self.execute(step, kv[0], kv[1]), items))
        all_ok = True
        for (host, _action), result in zip(items, results, strict=True):
            self.hosts[host]["steps"].append(result)
            self.audit("step", host=host, section=step.section, step=step.name,
                       ok=result["ok"], exit=result["exit"], attempts=result["attempts"],
                       duration_s=result["duration_s"], command=result["command"],
                       error=result.get("error"))
            all_ok = all_ok and result["ok"]
            mark = "ok  " if result["ok"] else "FAIL"
            self.say(f"{mark} {host} [{step.section}] {step.name} ({result['duration_s']:.2f}s)"
                     + (f" - {result['error']}" if not result["ok"] else ""))
        if all_ok:
            self.passed[step.name] = True
        else:
            self.failed_steps.add(step.name)
        return all_ok

    def run_section(self, name: str) -> tuple[bool, str | None]:
        """Run a section. Returns (all ok, the on_failure that stopped it or None)."""
        all_ok = True
        for step in self.plan.section(name):
            if self.run_step(step):
                continue
            all_ok = False
            if name in ("verify", "rollback"):
                continue  # report every check; roll back as much as possible
            if step.on_failure != "continue":
                return False, step.on_failure if name == "steps" else "abort"
        return all_ok, None


def run_plan(plan: Plan, approvals: list[str] | None = None, run_id: str | None = None,
             on_event: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Execute a plan and return the one result object (``--json`` prints it).

    Args:
        plan: from :func:`gept.runbook.plan.make_plan`.
        approvals: people's approvals (``gept coordinate approve``) for its danger zones.
        run_id: use this id instead of a fresh one.
        on_event: called with a short line as steps finish (human progress output).

    Raises:
        NeedsCoordination: a danger zone without a valid approval (exit 3); nothing connected.
        Locked: another run holds the controller or a host lock (exit 4).
    """
    with trail.batch():
        return _run_plan(plan, list(approvals or []), run_id, on_event)


def signers_of(plan: Plan) -> Signers:
    """The approvers the inventory names (the same data the deploys install on hosts).

    Raises:
        InvalidInput: the plan's hosts disagree about who may approve.
    """
    found = {repr(sorted(dict(h.data.get("approvers") or {}).items()))
             for h in plan.host_index.values()}
    if len(found) > 1:
        raise InvalidInput("the plan's hosts name different approvers", field="approvers")
    host = next(iter(plan.host_index.values()), None)
    return Signers.from_mapping(dict(host.data.get("approvers") or {}) if host else {})


def _run_plan(plan: Plan, approvals: list[str], run_id: str | None,
              on_event: Callable[[str], None] | None) -> dict[str, Any]:
    run = _Run(plan, run_id or new_run_id(), on_event)
    run.approvals = approvals
    rb = plan.runbook
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    budget = sum(max(s.timeout, *(a.wait_timeout or 0 for a in s.actions.values()))
                 * (1 + s.retries.count) for s in plan.steps) + 300
    holder = locks.holder_record(run.run_id, rb.name, budget)
    run.audit("requested", params=public_params(rb, plan.params), runbook_class=rb.class_,
              zones=list(rb.zones), hosts=list(run.sessions))

    controller_locks: list[locks.ControllerLock] = []
    held_hosts: list[str] = []
    try:
        if rb.lock.enabled:
            for name in run.sessions:
                cl = locks.ControllerLock(rb.lock_scope, name, holder)
                try:
                    cl.acquire()
                except Locked as exc:
                    run.audit("refused", reason="locked", where="controller",
                              holder=exc.details.get("holder"))
                    raise
                controller_locks.append(cl)
        action = f"runbook {rb.name}"
        if rb.zones:  # refuse before connecting anywhere (the hosts check again)
            signers = signers_of(plan)
            for zone in rb.zones:
                approval = check_approval(zone, plan.plan_hash, pick(zone, approvals),
                                          hosts=plan.zone_hosts(zone), signers=signers,
                                          action=action)
                run.audit("approval_presented", zone=zone, approved_by=approval.by,
                          nonce=approval.nonce, hosts=list(approval.hosts))
        _open_and_lock(run, holder, held_hosts)

        def consume() -> None:
            # After the preconditions, so a failed precondition does not burn the approval.
            # This account's ledger: single use on the controller for a person's runs; for
            # the agent the host's gate is what counts (it spends the nonce in root's ledger).
            for zone in rb.zones:
                require_approval(zone, plan.plan_hash, pick(zone, approvals),
                                 hosts=plan.zone_hosts(zone), signers=signers_of(plan),
                                 ledger=default_ledger(), action=action)

        status, rollback_taken = _body(run, consume)
    finally:
        _release(run, held_hosts)
        for cl in controller_locks:
            cl.release()
        for s in run.sessions.values():
            s.close()
    verdict = evaluate_verdict(run.rb, run.hosts, run.failed_steps, run.passed)
    return {
        "run_id": run.run_id, "runbook": rb.name, "class": rb.class_, "zones": list(rb.zones),
        "plan_hash": plan.plan_hash, "status": status,
        "params": public_params(rb, plan.params),
        "hosts": run.hosts, "rollback_taken": rollback_taken,
        "verification": run.verification, "verdict": verdict,
        "started": started_at, "duration_s": round(time.monotonic() - started, 3),
    }


def _connect_all(run: _Run) -> None:
    """Open every connection in parallel; an unreachable host is reported, not raised."""
    def connect(item: tuple[str, Session]) -> tuple[str, str | None]:
        try:
            item[1].connect()
        except Exception as exc:  # socket, auth, host key: all reported per host
            return item[0], f"{type(exc).__name__}: {exc}"
        return item[0], None

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(run.sessions)))) as pool:
        for name, error in pool.map(connect, list(run.sessions.items())):
            if error is not None:
                run.unreachable[name] = error
                run.say(f"FAIL {name}: cannot connect: {error}")


def _open_and_lock(run: _Run, holder: dict[str, Any], held: list[str]) -> None:
    rb = run.rb
    _connect_all(run)
    for name, session in run.sessions.items():
        if name in run.unreachable:
            continue
        host = session.host
        first = run.host_audit[name]
        if not rb.lock.enabled:
            continue
        cmd = locks.host_acquire_command(host.lock_dir, rb.lock_scope, holder, host.audit_log,
                                         first)
        out = session.run(_internal(host, cmd), timeout=30)
        if out.error is not None or out.exit != 0:
            # Never run unlocked: the host's steps fail with this reason instead.
            why = out.error or (out.stderr.strip() or out.stdout.strip())[-300:]
            run.unreachable[name] = f"cannot take the host lock: {why}"
            continue
        run.host_audit[name] = []
        acquired, broke, other = locks.parse_acquire(out.stdout)
        if broke:
            run.audit("lock_broken", host=name, scope=rb.lock_scope)
        if not acquired:
            run.audit("refused", host=name, reason="locked", holder=other)
            raise Locked(f"{rb.lock_scope} on {name} is locked by {locks.describe(other)}",
                         scope=rb.lock_scope, host=name, holder=other, where="host")
        held.append(name)


def _internal(_host: Host, command: str) -> str:
    """The runner's own bookkeeping (locks in a sticky shared directory, audit lines to the
    journal) runs as the SSH user: it needs no privilege the agent does not have.
    """
    return command


def _release(run: _Run, held: list[str]) -> None:
    rb = run.rb
    for name, session in run.sessions.items():
        host = session.host
        lines = run.host_audit[name]
        if name in held:
            cmd = locks.host_release_command(host.lock_dir, rb.lock_scope, run.run_id,
                                             host.audit_log, lines)
        elif lines and session._conn is not None:
            cmd = locks.append_command(host.audit_log, lines)
        else:
            continue
        session.run(_internal(host, cmd), timeout=30)


def _body(run: _Run, consume: Callable[[], None]) -> tuple[str, bool]:
    rb = run.rb
    say = run.say

    ok, _ = run.run_section("preconditions")
    if not ok:
        run.audit("finished", status="precondition_failed")
        say("precondition failed: nothing was changed (no approval was used)")
        return "precondition_failed", False
    consume()
    ok, stop = run.run_section("steps")
    rollback_taken = False
    if stop == "rollback":
        say("step failed: rolling back")
        rollback_taken = True
        rb_ok, _ = run.run_section("rollback")
        run.audit("rolled_back", ok=rb_ok)
        status = "rolled_back" if rb_ok else "rollback_failed"
    elif stop == "abort":
        status = "failed"
    else:
        status = "ok" if ok else ("ok" if rb.verdict else "failed")
    if status == "ok" or (stop is None and not ok):
        v_ok, _ = run.run_section("verify")
        run.verification = [
            {"host": h, "step": r["step"], "ok": r["ok"], "error": r.get("error")}
            for h, data in run.hosts.items() for r in data["steps"] if r["section"] == "verify"]
        if not v_ok and status == "ok":
            status = "verification_failed"
    run.audit("finished", status=status, rollback_taken=rollback_taken)
    say(f"finished: {status}")
    return status, rollback_taken
