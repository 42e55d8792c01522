"""What the gate can do, one fixed action per danger zone it serves.

The zones the agent has no runbook for (``predictions-schema``, ``collector-intervals``) have
no action here: they change only through the deploys a person runs.

Example:
    >>> sorted(ACTIONS)[:4]
    ['demote-primary', 'fence-postgres', 'promote-model', 'promote-standby']
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gept.guards.approval import Approval
from gept.guards.zones import GATE_ZONES, GateAction

ENV_FILE = Path("/etc/gept/gept.env")
STOPPED_MARK = "# gept-runbook-stopped: "


class ActionFailed(Exception):
    """The approved action ran and failed."""


@dataclass(frozen=True)
class Action:
    """A danger-zone action: its name, its arguments and what it does; its zone is the
    name's in :data:`gept.guards.zones.GATE_ZONES` (written there only).
    """

    name: GateAction
    args: tuple[str, ...]
    run: Callable[[Approval, dict[str, str]], str]

    @property
    def zone(self) -> str:
        """The danger zone whose approval this action needs."""
        return GATE_ZONES[self.name]


def _sh(argv: list[str], timeout: float = 300) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise ActionFailed(f"{shlex.join(argv)} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc.stdout.strip()


def restart_postgres(_a: Approval, _args: dict[str, str]) -> str:
    """Restart PostgreSQL (breaks every engine connection: the runbook stops them first)."""
    _sh(["/usr/bin/systemctl", "restart", "postgresql.service"], timeout=300)
    return "postgresql restarted"


def stop_hydra_inference(_a: Approval, _args: dict[str, str]) -> str:
    """Comment out the inference cron line (the running batch is left to finish)."""
    from gept.gate.host import HostFacts

    cron = Path(HostFacts.load().inference_cron)
    lines = cron.read_text().splitlines()
    out = [f"{STOPPED_MARK}{line}" if re.search(r"^[^#].*gept infer", line) else line
           for line in lines]
    tmp = cron.with_name(".gept-inference.tmp")
    tmp.write_text("\n".join(out) + "\n")
    os.chmod(tmp, 0o644)
    tmp.replace(cron)
    return f"{sum(a != b for a, b in zip(lines, out, strict=True))} cron line(s) stopped"


def _registry_env() -> dict[str, str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for line in ENV_FILE.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)='?(.*?)'?", line.strip())
        if match:
            env[match.group(1)] = match.group(2)
    # The registry's own role when the deploys set one up (least privilege).
    if env.get("GEPT_REGISTRY_DATABASE_URL"):
        env["GEPT_DATABASE_URL"] = env["GEPT_REGISTRY_DATABASE_URL"]
        if env.get("GEPT_REGISTRY_DATABASE_PASSWORD_FILE"):
            env["GEPT_DATABASE_PASSWORD_FILE"] = env["GEPT_REGISTRY_DATABASE_PASSWORD_FILE"]
    return env


def _registry(approval: Approval, change: Callable[..., object], *args: object) -> str:
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(_registry_env())
    try:
        from gept.core.config import get_settings
        from gept.db.connect import connect

        get_settings.cache_clear()
        with connect(autocommit=True) as conn:
            result = change(conn, *args, approved=approval)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return str(getattr(result, "to_dict", lambda: result)())


def promote_model(approval: Approval, args: dict[str, str]) -> str:
    """Make a model ACTIVE (the registry checks its gate and checksum first)."""
    from gept.registry import lifecycle

    return _registry(approval, lifecycle.promote, int(args["model-id"]))


def rollback_model(approval: Approval, args: dict[str, str]) -> str:
    """Restore the previous ACTIVE model of a scope."""
    from gept.registry import lifecycle

    return _registry(approval, lifecycle.rollback, args["scope"])


def restore_postgres(_a: Approval, args: dict[str, str]) -> str:
    """Replace the live cluster with the repository's copy (latest, or a point in time)."""
    import json

    from gept.db.backups import BackupError, BackupFacts, restore_live

    target = args.get("target", "latest")
    try:
        done = restore_live(BackupFacts.load(), None if target == "latest" else target)
    except BackupError as exc:
        raise ActionFailed(str(exc)) from exc
    return json.dumps(done, sort_keys=True)


def _replication(name: str) -> Callable[[Approval, dict[str, str]], str]:
    """A :mod:`gept.gate.standby` action, its failures reported as :class:`ActionFailed`."""

    def run(approval: Approval, args: dict[str, str]) -> str:
        from gept.gate import standby

        try:
            result: str = getattr(standby, name)(approval, args)
        except standby.ReplicationFailed as exc:
            raise ActionFailed(str(exc)) from exc
        return result

    run.__doc__ = f"gept.gate.standby.{name}"
    return run


_ACTIONS: tuple[Action, ...] = (
    Action("restart-postgres", (), restart_postgres),
    Action("stop-hydra-inference", (), stop_hydra_inference),
    Action("promote-model", ("model-id",), promote_model),
    Action("rollback-model", ("scope",), rollback_model),
    Action("restore-postgres", ("target",), restore_postgres),
    Action("fence-postgres", (), _replication("fence_postgres")),
    Action("promote-standby", (), _replication("promote_standby")),
    Action("demote-primary", ("peer",), _replication("demote_primary")),
)
ACTIONS: dict[str, Action] = {action.name: action for action in _ACTIONS}
ARG_PATTERNS = {"model-id": r"[1-9][0-9]{0,9}", "scope": r"global|item:[1-9][0-9]{0,6}",
                # "latest", or a UTC time as pgBackRest's --target takes it
                "target": r"latest|20[0-9]{2}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]"
                          r":[0-5][0-9](\+00)?",
                # a database host's inventory name (checked against host.json's db_peers)
                "peer": r"[a-z0-9][a-z0-9.-]{0,62}"}
