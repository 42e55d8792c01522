"""An MCP client over stdio lists, plans and runs runbooks, and is refused on a danger zone."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from gept.guards import audit
from gept.testing.sshd import LoopbackSshd

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    with LoopbackSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def _data(result: Any) -> dict[str, Any]:
    if result.structured_content is not None:
        data = result.structured_content
        return dict(data.get("result", data)) if isinstance(data, dict) else {}
    return dict(json.loads(result.content[0].text))


async def _session_calls(inventory: Path, calls: list[tuple[str, dict[str, Any]]],
                         ) -> tuple[Any, list[dict[str, Any]]]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "gept.cli", "mcp", "--inventory", str(inventory)],
        env=dict(os.environ),
        cwd=str(REPO))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        out = [_data(await session.call_tool(name, args)) for name, args in calls]
    return tools, out


def test_agent_lists_plans_runs_and_is_refused(sshd: LoopbackSshd, tmp_path: Path) -> None:
    inventory = sshd.write_inventory(tmp_path / "inventory.py", ["ampere", "hydra"],
                                     tmp_path / "hosts")
    mark = audit.ROOT_LOG.stat().st_size if audit.ROOT_LOG.exists() else 0
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_runbooks", {}),
        ("plan_runbook", {"name": "restart-collector", "params": {"collector": "5m"}}),
        ("run_check_health", {}),
        ("run_runbook", {"name": "restart-postgres"}),
        ("coordination_status", {}),
        ("run_restart_collector", {"params": {"collector": "5m; reboot"}}),
    ]
    tools, (listed, planned, health, refused, status, injected) = anyio.run(
        _session_calls, inventory, calls)
    by_name = {t.name: t for t in tools.tools}
    for name in ("list_runbooks", "show_runbook", "plan_runbook", "run_runbook",
                 "coordination_status", "run_check_health", "run_restart_postgres"):
        assert name in by_name
    assert "approve" not in " ".join(by_name)  # no tool makes approvals
    safe, danger = by_name["run_check_health"].annotations, by_name[
        "run_restart_postgres"].annotations
    assert safe.read_only_hint is True
    assert safe.idempotent_hint is True
    assert danger.destructive_hint is True
    assert danger.read_only_hint is False

    assert "check-health" in [r["name"] for r in listed["runbooks"]]
    assert planned["status"] == "planned"
    assert len(planned["plan_hash"]) == 64
    assert "collector-5m" in json.dumps(planned["steps"])

    # check-health really ran over SSH on the loopback host (no engine there: it fails,
    # and says so per step).
    assert health["runbook"] == "check-health"
    assert health["status"] == "failed"
    steps = health["hosts"]["ampere"]["steps"]
    assert {s["step"] for s in steps} >= {"engine-health", "postgresql-ready", "disk"}

    assert refused["status"] == "needs_coordination"
    assert refused["zone"] == "restart-postgres"
    assert "gept coordinate approve" in refused["how"]
    assert "gept coordinate approve" in status["how"]
    assert injected["status"] == "invalid"
    assert injected["field"] == "params.collector"
    with audit.ROOT_LOG.open() as fh:
        fh.seek(mark)
        events = [json.loads(x) for x in fh.read().splitlines() if x.strip()]
    assert any(e["event"] == "refused" and e.get("zone") == "restart-postgres" for e in events)
    # Refused before connecting: no step of restart-postgres ran anywhere.
    assert not [e for e in events if e.get("runbook") == "restart-postgres"
                and e["event"] == "step"]
