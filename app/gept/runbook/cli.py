"""`gept runbook` and `gept coordinate` commands.

Exit codes: 0 ok · 1 a step/check failed (or rolled back) · 2 invalid runbook, parameter or
host · 3 refused by a danger-zone guard · 4 locked by another run. Nothing ever prompts.

Example:
    $ gept runbook list
    $ gept runbook plan restart-collector --param collector=5m --json
    $ gept runbook plan restart-postgres --json > plan.json
    $ gept coordinate approve --plan plan.json --reason "window" --ttl 15m   # a person signs
    $ gept runbook run restart-postgres --approval <APPROVAL> --json
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import typer

from gept.core.controller import INVENTORY_HELP
from gept.core.output import emit

app = typer.Typer(help="Executable YAML runbooks through Fabric.", no_args_is_help=True)

coordinate_app = typer.Typer(help="People's approvals for danger zones (signed with their SSH "
                                  "key).", no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Print one JSON object (for agents).")
_DIR = typer.Option(None, "--dir", help="A draft runbooks directory (people only; default: "
                                        "the repository's pinned catalogue).")
_INV = typer.Option(None, "--inventory", "-i", help=INVENTORY_HELP)
_PARAM = typer.Option(None, "--param", "-p", help="A parameter as name=value (repeatable).")
_TARGET = typer.Option(None, "--target", "-t", help="Inventory group or host instead of the "
                                                    "runbook's targets.")


@app.command("list")
def list_cmd(as_json: bool = _JSON, directory: Path | None = _DIR) -> None:
    """List the runbooks with their class and zones."""
    from gept.runbook import service

    rows = service.list_runbooks(directory)
    human = "\n".join(f"{r['name']:<22} {r['class']:<8} {','.join(r['zones']) or '-':<22} "
                      f"{r['description'][:70]}" for r in rows)
    emit({"runbooks": rows}, as_json, human)


@app.command("show")
def show_cmd(name: str, as_json: bool = _JSON, directory: Path | None = _DIR) -> None:
    """Show one runbook: description, class, zones, parameters, steps."""
    from gept.runbook import service

    data = service.show(name, directory)
    emit(data, as_json, json.dumps(data["definition"], indent=2, default=str))


@app.command("validate")
def validate_cmd(paths: list[Path] = typer.Argument(None, help="Files (default: all)."),
                 as_json: bool = _JSON, directory: Path | None = _DIR) -> None:
    """Validate runbooks against the schema, the classifier and their references (exit 2)."""
    from gept.runbook import service

    data = service.validate(paths or None, directory)
    emit(data, as_json, f"valid: {', '.join(data['runbooks'])}")


@app.command("schema")
def schema_cmd(write: bool = typer.Option(False, "--write", help="Write runbooks/schema.json."),
               directory: Path | None = _DIR) -> None:
    """Print (or write) the JSON Schema of runbook files, generated from the model."""
    from gept.runbook.loader import runbook_dir
    from gept.runbook.model import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if write:
        path = runbook_dir(directory) / "schema.json"
        path.write_text(text)
        typer.echo(f"wrote {path}")
    else:
        sys.stdout.write(text)


def _plan_text(plan: dict[str, Any]) -> str:
    lines = [f"runbook {plan['runbook']} ({plan['class']}"
             + (f", zones {', '.join(plan['zones'])}" if plan["zones"] else "") + ")",
             f"hosts: {', '.join(plan['hosts'])}"]
    for step in plan["steps"]:
        lines.append(f"[{step['section']}] {step['step']} ({step['kind']}, "
                     f"timeout {step['timeout']:g}s, on_failure {step['on_failure']})")
        for host, command in step["commands"].items():
            lines.append(f"    {host}: {command}")
    lines.append(f"plan hash: {plan['plan_hash']}")
    return "\n".join(lines)


@app.command("plan")
def plan_cmd(name: str, param: list[str] = _PARAM, target: str | None = _TARGET,
             inventory: Path | None = _INV, as_json: bool = _JSON,
             directory: Path | None = _DIR) -> None:
    """Render the exact commands per host and the plan hash. Connects to nothing."""
    from gept.runbook import service

    data = service.plan(name, service.parse_params(param or []), target, inventory, directory)
    emit(data, as_json, _plan_text(data))


def _run_text(result: dict[str, Any]) -> str:
    lines = [f"run {result['run_id']} of {result['runbook']}: {result['status']}"
             f" in {result['duration_s']:.1f}s (plan {result['plan_hash'][:12]})"]
    for host, data in result["hosts"].items():
        for step in data["steps"]:
            mark = "ok  " if step["ok"] else "FAIL"
            extra = f" - {step['error']}" if not step["ok"] and step.get("error") else ""
            lines.append(f"  {mark} {host} [{step['section']}] {step['step']} "
                         f"({step['duration_s']:.2f}s){extra}")
    if result["rollback_taken"]:
        lines.append("  rollback was taken")
    if result.get("verdict"):
        v = result["verdict"]
        lines.append(f"verdict: {v['verdict']}" + (f"\nnext: gept runbook run {v['next']}"
                                                  if v.get("next") else ""))
    return "\n".join(lines)


@app.command("run")
def run_cmd(name: str, param: list[str] = _PARAM, target: str | None = _TARGET,
            approval: list[str] = typer.Option(None, "--approval", help="A person's approval "
                                               "for a danger zone (repeatable)."),
            inventory: Path | None = _INV, as_json: bool = _JSON,
            directory: Path | None = _DIR) -> None:
    """Run a runbook: guards, locks, steps, rollback, verification, audit. Never prompts."""
    import logging

    from gept.runbook import service

    # paramiko logs every connection at INFO; the step lines below already say what matters.
    logging.getLogger("paramiko").setLevel(logging.WARNING)

    def progress(text: str) -> None:
        if not as_json:
            sys.stderr.write(text + "\n")

    result = service.run(name, service.parse_params(param or []), target, inventory,
                         list(approval or []), directory, on_event=progress)
    emit(result, as_json, _run_text(result))
    if result["status"] != "ok":
        raise typer.Exit(1)


@app.command("pin")
def pin_cmd(as_json: bool = _JSON) -> None:
    """Pin the runbooks as they are now (people only): writes runbooks/catalogue.lock.

    Review the diff like code: agents run exactly the pinned files.
    """
    from gept.core.errors import NeedsCoordination
    from gept.runbook import catalogue

    if catalogue.is_agent():
        raise NeedsCoordination("only people pin the catalogue", zone=None)
    text = catalogue.pin_text()
    catalogue.PIN_FILE.write_text(text)
    emit(json.loads(text), as_json, f"pinned {len(json.loads(text)['files'])} runbooks in "
                                    f"{catalogue.PIN_FILE}")


# ---------------------------------------------------------------------------- coordinate

@coordinate_app.command("approve")
def approve_cmd(
    plan: Path | None = typer.Option(None, "--plan", help="A plan as `gept runbook plan "
                                     "--json` printed it (zone, hash and hosts from there)."),
    zone: str | None = typer.Option(None, "--zone", help="The danger zone."),
    plan_hash: str | None = typer.Option(None, "--plan-hash", help="From `gept runbook plan`."),
    hosts: list[str] = typer.Option(None, "--host", help="<inventory>/<host>, e.g. lab/ampere "
                                    "(repeatable; from the plan's approvals_needed)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit trail)."),
    ttl: str = typer.Option("15m", "--ttl", help="Lifetime: 900, 15m, 2h (max 24h)."),
    key: Path | None = typer.Option(None, "--key", help="Your SSH key (private, or a .pub "
                                    "whose private key is in ssh-agent); default "
                                    "~/.ssh/id_ed25519."),
    as_json: bool = _JSON,
) -> None:
    """Sign an approval with your SSH key: one plan, one zone, these hosts, once (people only).

    Example:
        $ gept coordinate approve --plan plan.json --reason "pg minor upgrade" --ttl 15m
        $ gept coordinate approve --zone restart-postgres --plan-hash <H> --host lab/ampere \\
              --reason "window" --key ~/.ssh/id_ed25519.pub     # key held by ssh-agent
    """
    from gept.core.errors import InvalidInput
    from gept.guards import approval as approvals
    from gept.guards import audit

    wanted = _approval_requests(plan, zone, plan_hash, hosts or [])
    out = []
    for item in wanted:
        text = approvals.sign(item["zone"], item["plan_hash"], item["hosts"], reason,
                              approvals.parse_ttl(ttl), key or _default_key())
        signed, _sig = approvals.decode(text)
        audit.record("approval_signed", **{k: v for k, v in signed.public().items()
                                           if k != "approved_by"},
                     key=approvals.signer_key_of(key or _default_key()))
        out.append({"approval": text, **signed.public()})
    if not out:
        raise InvalidInput("nothing to approve: the plan touches no danger zone", field="plan")
    human = "\n".join(f"{o['approval']}\n(zone {o['zone']} on {', '.join(o['hosts'])}, "
                      f"expires in {ttl}, single use; pass it with --approval)" for o in out)
    emit({"approvals": out}, as_json, human)


def _default_key() -> Path:
    from gept.guards import approval as approvals

    return approvals.default_key()


def _approval_requests(plan: Path | None, zone: str | None, plan_hash: str | None,
                       hosts: list[str]) -> list[dict[str, Any]]:
    from gept.core.errors import InvalidInput

    if plan is not None:
        try:
            data = json.loads(plan.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{plan}: not a plan printed by `gept runbook plan --json`",
                               field="plan") from exc
        needed = [n for n in data.get("approvals_needed", []) if not zone or n["zone"] == zone]
        return [{"zone": n["zone"], "plan_hash": n["plan_hash"], "hosts": n["hosts"]}
                for n in needed]
    if not (zone and plan_hash and hosts):
        raise InvalidInput("give --plan FILE, or --zone, --plan-hash and --host", field="plan")
    return [{"zone": zone, "plan_hash": plan_hash, "hosts": hosts}]


@coordinate_app.command("list")
def list_cmd_coordinate(as_json: bool = _JSON) -> None:
    """Approvals signed and used, from the audit trail (newest first)."""
    from gept.guards import audit

    rows = [r for r in reversed(audit.read())
            if r.get("event") in ("approval_signed", "approved_use")]
    human = "\n".join(f"{r.get('ts')}  {r['event']:<16} {r.get('zone')} "
                      f"{str(r.get('plan_hash'))[:12]} nonce {r.get('nonce')}" for r in rows)
    emit({"approvals": rows}, as_json, human or "no approvals")


@coordinate_app.command("revoke")
def revoke_cmd(approval: str = typer.Argument(..., help="The approval text (gept2....)."),
               inventory: Path | None = _INV, as_json: bool = _JSON) -> None:
    """Revoke an approval before it is used: its nonce is spent on this controller and on
    every host it names (their gate's ledger), so nobody can use it any more.

    Example:
        $ gept coordinate revoke gept2.eyJ... --inventory inventory/lab.py
    """
    from gept.core.controller import inventory_path
    from gept.guards import approval as approvals
    from gept.guards import audit
    from gept.guards.ledger import default_ledger
    from gept.guards.zones import GATE_PROGRAM
    from gept.inventory import select_hosts
    from gept.runbook.transport import Session

    claimed, _sig = approvals.decode(approval)
    with contextlib.suppress(approvals.Refused):
        default_ledger().consume(claimed.nonce, {"revoked": True, "by": audit.actor()})
    hosts: dict[str, str] = {}
    inv = inventory_path(inventory)
    for identity in claimed.hosts:
        name = identity.split("/", 1)[1]
        for target in select_hosts(inv, name):
            if target.identity != identity:
                continue
            cmd = f"{GATE_PROGRAM} revoke --nonce {claimed.nonce}"
            with Session(target) as session:
                out = session.run(cmd if target.is_root else f"sudo -n -- {cmd}", timeout=60)
            hosts[identity] = "revoked" if out.ok else (out.error or out.stderr.strip()[-200:])
    audit.record("revoked", zone=claimed.zone, plan_hash=claimed.plan_hash,
                 nonce=claimed.nonce, hosts=hosts)
    emit({"nonce": claimed.nonce, "hosts": hosts}, as_json,
         "\n".join(f"{h}: {r}" for h, r in hosts.items()) or "revoked on this controller")
