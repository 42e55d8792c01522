"""``gept audit``: who asked, who approved, which plan, what happened — newest first.

It reads the controller's trail (root's ``/var/log/gept/audit.jsonl``, appended through the
root-owned appender by other accounts) and, with ``--host``, what the host itself recorded,
which only root there can rewrite: the gate's decisions (journal, ``gept-gate``), the
runner's lines (``gept-runbook``), every command the agent ran over SSH with its exit status
(``gept-agent-ssh``, its sshd ForceCommand), sudo's refusals of the agent (``sudo``) and
PostgreSQL's "permission denied" errors (its log; readable by root).

Example:
    $ gept audit --since 2h --zone restart-postgres
    $ gept audit --host ampere --inventory inventory/lab.py --json
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from gept.core.controller import INVENTORY_HELP
from gept.core.errors import InvalidInput
from gept.core.output import emit

_SINCE_RE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_cutoff(text: str | None, now: datetime | None = None) -> datetime | None:
    """The moment ``--since`` means: ``30m``, ``2h``, ``7d`` ago, or an ISO time.

    Example:
        >>> since_cutoff("2h", datetime(2026, 1, 1, 12, tzinfo=UTC)).hour
        10

    Raises:
        InvalidInput: neither form.
    """
    if not text:
        return None
    match = _SINCE_RE.match(text.strip())
    if match:
        return (now or datetime.now(UTC)) - timedelta(
            seconds=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"--since {text!r} is not like 30m, 2h, 7d or an ISO time",
                           field="since") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(record: dict[str, Any]) -> datetime:
    raw = str(record.get("ts") or record.get("received") or "")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decisions(records: list[dict[str, Any]], since: datetime | None = None,
              zone: str | None = None, host: str | None = None) -> list[dict[str, Any]]:
    """Filter and order (newest first) audit records."""
    out = []
    for r in records:
        if since is not None and _when(r) < since:
            continue
        if zone is not None and r.get("zone") != zone:
            continue
        if host is not None and host not in (str(r.get("host", "")),
                                             str(r.get("host", "")).split("/")[-1]) \
                and host not in [str(h).split("/")[-1] for h in r.get("hosts", []) or []]:
            continue
        out.append(r)
    return sorted(out, key=_when, reverse=True)


def host_journal(inventory: Path | None, name: str, since: datetime | None) -> list[dict[str, Any]]:
    """The gate's and the runner's journal lines on one host (over SSH)."""
    from gept.core.controller import inventory_path
    from gept.inventory import select_hosts
    from gept.runbook.transport import Session

    target = select_hosts(inventory_path(inventory), name)[0]
    when = (since or datetime(1970, 1, 1, tzinfo=UTC)).strftime("%Y-%m-%d %H:%M:%S")
    with Session(target) as session:
        out = session.run(f"journalctl -q -o json --no-pager -t gept-gate -t gept-runbook "
                          f"-t sudo -t gept-agent-ssh --since '{when} UTC'; echo {_PG_MARK}; "
                          "grep -h 'permission denied' /var/log/postgresql/*.log "
                          "2>/dev/null | tail -n 500", timeout=60)
    journal, _, pglog = out.stdout.partition(_PG_MARK)
    rows: list[dict[str, Any]] = [r for r in (_pg_line(x, target.identity)
                                              for x in pglog.splitlines()) if r]
    for line in journal.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("SYSLOG_IDENTIFIER") == "sudo":
            record = _sudo_line(str(entry.get("MESSAGE", "")))
        elif entry.get("SYSLOG_IDENTIFIER") == "gept-agent-ssh":
            record = _ssh_line(str(entry.get("MESSAGE", "")))
        else:
            try:
                record = json.loads(entry.get("MESSAGE", ""))
            except (ValueError, TypeError):
                continue
        if not isinstance(record, dict):
            continue
        ts = datetime.fromtimestamp(int(entry.get("__REALTIME_TIMESTAMP", 0)) / 1e6, UTC)
        record.setdefault("ts", ts.isoformat(timespec="milliseconds"))
        record.setdefault("event", "gate_" + str(record.get("outcome", "line"))
                          if entry.get("SYSLOG_IDENTIFIER") == "gept-gate" else "host_line")
        record["source"] = f"{target.name}:{entry.get('SYSLOG_IDENTIFIER')}"
        record.setdefault("host", target.identity)
        rows.append(record)
    return rows


_PG_MARK = "--gept-postgres-log--"
_PG_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\S* (\w+) \[\d+\] (\S+?)@(\S+) "
                    r"ERROR:\s+(permission denied.*)$")


def _sudo_line(message: str) -> dict[str, Any] | None:
    """Sudo's own line about a refused command, as a record (other sudo lines: None)."""
    if "command not allowed" not in message and "password is required" not in message:
        return None
    who = message.split(" : ", 1)[0].strip()
    command = message.rsplit("COMMAND=", 1)[-1].strip() if "COMMAND=" in message else ""
    return {"event": "sudo_refused", "asked_by": who, "command": command,
            "outcome": "refused by sudoers"}


def _ssh_line(message: str) -> dict[str, Any] | None:
    """The agent's recording shell: ``exit=<n> <command>``, as a record."""
    match = re.match(r"^exit=(\d+) (.*)$", message, re.DOTALL)
    if match is None:
        return None
    code = int(match.group(1))
    return {"event": "agent_command", "asked_by": "gept-agent", "command": match.group(2),
            "exit": code, "outcome": "ok" if code == 0 else f"failed (exit {code})"}


def _pg_line(line: str, host: str) -> dict[str, Any] | None:
    """A PostgreSQL "permission denied" log line, as a record."""
    match = _PG_RE.match(line.strip())
    if match is None:
        return None
    return {"ts": f"{match.group(1).replace(' ', 'T')}+00:00", "event": "db_refused",
            "asked_by": match.group(3), "database": match.group(4),
            "outcome": match.group(5)[:300], "host": host, "source": "postgresql"}


def audit_cmd(
    since: str | None = typer.Option(None, "--since", help="30m, 2h, 7d or an ISO time."),
    zone: str | None = typer.Option(None, "--zone", help="Only this danger zone."),
    host: str | None = typer.Option(None, "--host", help="Only this host; also reads its "
                                    "journal (the gate's decisions)."),
    inventory: Path | None = typer.Option(None, "--inventory", "-i",
                                          help="For --host: " + INVENTORY_HELP),
    limit: int = typer.Option(200, "--limit", min=1, max=100_000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show audit decisions newest first: who asked, who approved, plan hash, outcome."""
    from gept.guards import audit

    cutoff = since_cutoff(since)
    records = audit.read()
    if host is not None:
        records += host_journal(inventory, host, cutoff)
    rows = decisions(records, cutoff, zone, host)[:limit]
    human = "\n".join(
        f"{r.get('ts', '')[:19]}  {r.get('event', '')!s:<18} "
        f"{r.get('zone') or '-'!s:<20} {str(r.get('plan_hash') or '-')[:12]:<12} "
        f"asked by {r.get('asked_by') or r.get('user') or '-'}"
        + (f", approved by {r['approved_by']}" if r.get("approved_by") else "")
        + (f": {r.get('outcome') or r.get('status') or r.get('reason') or ''}")
        for r in rows) or "no audit records"
    emit({"records": rows, "trail": str(audit.log_path())}, as_json, human)
