"""`gept runbook` and `gept coordinate` commands.

Exit codes: 0 ok · 1 a step/check failed (or rolled back) · 2 invalid runbook, parameter or
host · 3 refused by a danger-zone guard · 4 locked by another run. Nothing ever prompts.

Example:
    $ gept runbook list
    $ gept runbook plan restart-collector --param collector=5m --json
    $ gept coordinate approve --zone restart-postgres --plan-hash <H> --reason "window" --ttl 15m
    $ gept runbook run restart-postgres --token <TOKEN> --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from gept.core.output import emit

app = typer.Typer(help="Executable YAML runbooks through Fabric.", no_args_is_help=True)

coordinate_app = typer.Typer(help="Coordination tokens for danger zones.", no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Print one JSON object (for agents).")
_DIR = typer.Option(None, "--dir", help="Runbooks directory (default ./runbooks or "
                                        "$GEPT_RUNBOOKS_DIR).")
_INV = typer.Option(None, "--inventory", "-i", help="pyinfra inventory file (default "
                                                    "$GEPT_INVENTORY or inventory/production.py).")
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
            token: list[str] = typer.Option(None, "--token", help="Coordination token for a "
                                            "danger zone (or $GEPT_COORDINATION_TOKEN)."),
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

    tokens: str | list[str] | None = token[0] if token and len(token) == 1 else (token or None)
    result = service.run(name, service.parse_params(param or []), target, inventory, tokens,
                         directory, on_event=progress)
    emit(result, as_json, _run_text(result))
    if result["status"] != "ok":
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- coordinate

@coordinate_app.command("approve")
def approve_cmd(
    zone: str = typer.Option(..., "--zone", help="The danger zone."),
    plan_hash: str = typer.Option(..., "--plan-hash", help="From `gept runbook plan`."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit log)."),
    ttl: str = typer.Option("15m", "--ttl", help="Lifetime: 900, 15m, 2h (max 24h)."),
    approved_by: str | None = typer.Option(None, "--by", help="Who approves (default: you)."),
    as_json: bool = _JSON,
) -> None:
    """Make a single-use token allowing one plan in one danger zone (people only)."""
    from gept import guards

    token = guards.approve(zone, plan_hash, reason, guards.parse_ttl(ttl), approved_by)
    latest = guards.list_tokens()[-1]
    emit({"token": token, **latest}, as_json,
         f"{token}\n(zone {zone}, expires {latest['expires']}, single use; pass it with "
         f"--token or GEPT_COORDINATION_TOKEN)")


@coordinate_app.command("list")
def list_tokens_cmd(as_json: bool = _JSON) -> None:
    """List approved tokens and their state (active, used, revoked, expired)."""
    from gept import guards

    rows = guards.list_tokens()
    human = "\n".join(f"{t['id']}  {t['state']:<8} {t['zone']:<21} {t['plan_hash'][:12]}  "
                      f"by {t['approved_by']} until {t['expires']}: {t['reason']}"
                      for t in rows) or "no tokens"
    emit({"tokens": rows}, as_json, human)


@coordinate_app.command("revoke")
def revoke_cmd(token_id: str, as_json: bool = _JSON) -> None:
    """Revoke a token by id so it can no longer be used."""
    from gept import guards

    row = guards.revoke(token_id)
    emit(row, as_json, f"revoked {token_id}")
