"""The danger zones hold against the agent itself: every route an adversarial agent would try.

Each attempt runs as the controller account ``gept-agent`` with its own key: through the
runner (other spellings, a variable, base64, a draft directory, ``--target``, a self-made
approval, environment overrides), through ``gept mcp`` (a runbook file dropped in after it
started), and over **raw SSH** to the hosts (sudo or not). After each, root reads what the
five zones protect — PostgreSQL's start time, the ``predictions`` columns, the registry,
Hydra's inference cron, the collectors' intervals — and finds it unchanged; and each refusal
shows in ``gept audit``.

A person's approval still works end to end (CLI and MCP), once, for its zone, plan and host.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from agentside import (
    AGENT_GEPT,
    AGENT_HOME,
    LAB_ENV,
    REPO,
    agent_gept,
    agent_runbook,
    agent_ssh,
    as_agent,
    guarded_state,
    person_approves,
)
from breakage import engine_healthy, wait_for

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

pytestmark = pytest.mark.timeout(1800)
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"

SNEAKY = """\
name: tune-db
description: looks harmless
class: caution
targets: {targets}
steps:
  - name: s
    run: {command}
"""
# What an agent would write to reach a zone without saying so (all run as the agent's
# account; only sudo could make them work, and sudoers does not allow them).
SPELLINGS = {
    "quotes": "sudo -n systemctl restart 'postgre'sql.service",
    "variable": "U=postgresql; sudo -n systemctl restart $U",
    "base64": "echo " + base64.b64encode(b"sudo -n systemctl restart postgresql").decode()
              + " | base64 -d | bash",
    "kill": "pkill -9 -u postgres postgres; kill -9 $(pgrep -u postgres -o postgres)",
    "sudo-shell": "sudo -n bash -c 'systemctl restart postgresql'",
    "sudo-login": "sudo -n -i systemctl restart postgresql",
    "sudo-user": "sudo -n -u postgres pg_ctlcluster 15 main restart",
    "sudo-env": "sudo -n -E systemctl restart postgresql",
    "alter": "psql -X -U gept_probe -d osrs_data -c 'ALTER TABLE \"predictions\" ADD COLUMN x int'",
    "registry": "psql -X -U gept_probe -d osrs_data -c "
                "\"UPDATE \\\"model_registry\\\" SET status = 'ARCHIVED'\"",
    "read-write": "psql -X -U gept_probe -d osrs_data -c "
                  "'BEGIN READ WRITE; DELETE FROM model_registry; COMMIT'",
    "copy-program": "psql -X -U gept_probe -d osrs_data -c "
                    "\"COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned'\"",
    "meta-command": "psql -X -U gept_probe -d osrs_data -c '\\! id'",
    "owner-role": "psql -X -h 127.0.0.1 -U osrs_user -d osrs_data -w -c 'DROP TABLE predictions'",
    "postgres-role": "psql -X -U postgres -d osrs_data -w -c 'DROP TABLE predictions'",
    "collector-env": "perl -pi -e 's/=300/=60/' /opt/gept/collectors/.env "
                     "/opt/gept/collectors/docker-compose.yml",
    "compose-up": "sudo -n /usr/bin/docker-compose -f /opt/gept/collectors/docker-compose.yml "
                  "up -d",
    "docker-socket": "docker ps",
    "secrets": "cat /etc/gept/db_password /etc/gept/gept.env",
}
HYDRA_SPELLINGS = {
    "cron-link": "ln -sf /dev/null /etc/cron.d/gept-inference",
    "cron-sed": "sudo -n sed -i 's/^/#/' /etc/cron.d/gept-inference",
    "cron-stop": "sudo -n systemctl stop cron",
    "kill-inference": "pkill -f 'gept infer'",
}


@pytest.fixture
def before(converged: LabHandle) -> dict[str, str]:
    return guarded_state(converged)


def unchanged(lab: LabHandle, before: dict[str, str]) -> None:
    after = guarded_state(lab)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def audit_since(start: str, host: str | None = None) -> list[dict[str, Any]]:
    """``gept audit --since <start> [--host H] --json`` as the person (root)."""
    args = [sys.executable, "-m", "gept.cli", "audit", "--since", start, "--limit", "5000",
            "--json", "--inventory", "inventory/lab.py"] + (["--host", host] if host else [])
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)["records"]
    return rows


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 1))


# ------------------------------------------------------------------ through the runner


def _agent_mcp() -> Any:
    """The agent's own ``gept mcp`` over stdio, as an MCP client starts it (as gept-agent)."""
    from mcp import StdioServerParameters

    return StdioServerParameters(
        command=RUNUSER, args=["-u", "gept-agent", "--", AGENT_GEPT, "mcp",
                               "--inventory", str(REPO / "inventory" / "lab.py")],
        env={"HOME": str(AGENT_HOME), "PATH": "/usr/bin:/bin", **LAB_ENV}, cwd="/tmp")

def test_a_draft_runbook_is_refused_for_the_agent(converged: LabHandle,
                                                  before: dict[str, str]) -> None:
    start = now_iso()
    drafts = AGENT_HOME / "drafts"
    as_agent(["mkdir", "-p", str(drafts)])
    for name, command in SPELLINGS.items():
        text = SNEAKY.format(targets="ampere", command=json.dumps(command))
        as_agent(["sh", "-c", f"cat > {drafts}/tune-db.yaml"], stdin=text)
        code, result = agent_runbook("run", "tune-db", "--dir", str(drafts))
        assert code == 3, (name, result)
        assert "pinned catalogue" in result["message"]
    # Nor through the environment or the current directory: the catalogue is the pinned one.
    code, result = agent_runbook("run", "tune-db", env={"GEPT_RUNBOOKS_DIR": str(drafts)})
    assert code == 2
    assert "no runbook named 'tune-db'" in result["message"]
    unchanged(converged, before)
    refusals = [r for r in audit_since(start) if r["event"] == "refused"
                and "unpinned" in str(r.get("reason"))]
    assert len(refusals) >= len(SPELLINGS)
    assert {r["asked_by"] for r in refusals} == {"gept-agent"}  # stamped by root's appender


def test_target_and_groups_do_not_reach_hydra_by_another_name(converged: LabHandle,
                                                              before: dict[str, str]) -> None:
    # restart-collector on hydra: its sudo there allows no compose command at all.
    code, _ = agent_runbook("run", "restart-collector", "-p", "collector=5m",
                            "--target", "hydra")
    assert code != 0
    code, _result = agent_runbook("run", "restart-engine", "--target", "hydra")
    assert code != 0
    unchanged(converged, before)


def test_self_approval_and_overrides_are_refused(converged: LabHandle, before: dict[str, str],
                                                 tmp_path: Path) -> None:
    start = now_iso()
    code, plan = agent_runbook("plan", "restart-postgres")
    assert code == 0
    plan_file = AGENT_HOME / "plan.json"
    as_agent(["sh", "-c", f"cat > {plan_file}"], stdin=json.dumps(plan))
    # No person's key here: a clear refusal.
    code, result = agent_gept("coordinate", "approve", "--plan", str(plan_file), "--reason", "x")
    assert code == 2
    assert "cannot approve" in result["message"]
    # Its own SSH key signs... and nobody accepts it, whatever the environment says.
    own_key = str(AGENT_HOME / ".local/state/gept/lab/id_ed25519")
    code, signed = agent_gept("coordinate", "approve", "--plan", str(plan_file), "--reason",
                              "x", "--key", own_key, "--ttl", "24h")
    assert code == 0
    forged = signed["approvals"][0]["approval"]
    as_agent(["mkdir", "-p", "/tmp/agent-state"])
    for env in ({}, {"GEPT_STATE_DIR": "/tmp/agent-state"},
                {"GEPT_COORDINATION_KEY_FILE": own_key},
                {"GEPT_COORDINATION_TOKEN": forged}):
        code, result = agent_runbook("run", "restart-postgres", "--approval", forged, env=env)
        assert code == 3, (env, result)
        assert "not signed by an allowed approver" in result["message"]
    # The host's gate says the same over raw SSH.
    raw = agent_ssh("ampere", "sudo -n /usr/local/sbin/gept-gate restart-postgres "
                              f"--plan-hash {plan['plan_hash']} --approval '{forged}'")
    assert raw.returncode == 3, raw.stdout + raw.stderr
    unchanged(converged, before)
    gate = [r for r in audit_since(start, host="ampere") if r.get("outcome") == "refused"
            and r.get("source", "").endswith("gept-gate")]
    assert gate
    assert gate[0]["asked_by"] == "gept-agent"
    assert "not signed by an allowed approver" in gate[0]["reason"]


# ------------------------------------------------------------------ raw SSH

@pytest.mark.parametrize(("host", "spellings"), [("ampere", SPELLINGS), ("hydra", HYDRA_SPELLINGS)])
def test_raw_ssh_with_the_agents_key_reaches_no_zone(converged: LabHandle,
                                                     before: dict[str, str], host: str,
                                                     spellings: dict[str, str]) -> None:
    start = now_iso()
    for name, command in spellings.items():
        proc = agent_ssh(host, command, timeout=60)
        # sudo refuses outright; the rest fail on permissions (a `\!` in psql runs a shell as
        # the agent itself, which its SSH login already is: nothing more). What matters is
        # the state below, read by root.
        if command.startswith("sudo"):
            assert proc.returncode != 0, (name, proc.stdout)
    wait_for("the engine", lambda: engine_healthy(converged))
    unchanged(converged, before)
    assert converged.run(host, "test -e /tmp/pwned").returncode != 0
    records = audit_since(start, host=host)
    # Every attempt is on the host's record, with how it ended (the agent's sshd
    # ForceCommand writes each command and its exit status to the journal).
    ran = {r["command"]: r["exit"] for r in records if r["event"] == "agent_command"}
    for name, command in spellings.items():
        assert command in ran, (name, sorted(ran)[:5])
        if command.startswith("sudo"):
            assert ran[command] != 0, name
    if host == "ampere":
        sudo = [r for r in records if r["event"] == "sudo_refused"]
        assert any("postgresql" in r["command"] for r in sudo), sudo
        assert all(r["asked_by"] == "gept-agent" for r in sudo)
        denied = [r for r in records if r["event"] == "db_refused"]
        assert any(r["asked_by"] == "gept_probe" for r in denied), records[:5]


def test_the_agent_forwards_nothing(converged: LabHandle) -> None:
    # No tunnel to PostgreSQL (or anything else) through the agent's SSH login.
    proc = as_agent(["ssh", "-F", str(AGENT_HOME / ".local/state/gept/lab/ssh_config"),
                     "-W", "127.0.0.1:5432", "ampere"], timeout=60, stdin="")
    assert proc.returncode != 0, proc.stdout


def test_the_agents_sudo_is_exactly_its_runbooks(converged: LabHandle) -> None:
    listed = agent_ssh("ampere", "sudo -n -l").stdout
    assert "ALL : ALL" not in listed
    assert "(ALL) ALL" not in listed
    for forbidden in ("/bin/sh", "/bin/bash", "systemctl restart postgresql", "*"):
        assert forbidden not in listed.split("may run the following commands")[-1], forbidden


# ------------------------------------------------------------------ MCP

def test_mcp_serves_the_catalogue_it_started_with(converged: LabHandle) -> None:
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    late = REPO / "runbooks" / "late-arrival.yaml"

    async def session() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
        async with stdio_client(_agent_mcp()) as (read, write), \
                ClientSession(read, write) as client:
            await client.initialize()
            # A person drops a runbook in after the server started (an agent cannot write
            # the repository at all): it is neither offered nor run.
            late.write_text(SNEAKY.format(targets="ampere", command='"true"'))
            tools = [t.name for t in (await client.list_tools()).tools]
            listed = await client.call_tool("list_runbooks", {})
            ran = await client.call_tool("run_runbook", {"name": "late-arrival"})
            return tools, _data(listed), _data(ran)

    try:
        tools, listed, ran = anyio.run(session)
    finally:
        late.unlink(missing_ok=True)
    assert "run_late_arrival" not in tools
    assert "late-arrival" not in [r["name"] for r in listed["runbooks"]]
    assert ran["status"] == "invalid"
    assert "no runbook named" in ran["message"]


def _data(result: Any) -> dict[str, Any]:
    if result.structured_content is not None:
        data = result.structured_content
        return dict(data.get("result", data)) if isinstance(data, dict) else {}
    return dict(json.loads(result.content[0].text))


def test_a_persons_approval_works_through_mcp_once(converged: LabHandle) -> None:
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    def started() -> str:
        from agentside import root_psql

        return root_psql(converged, "SELECT pg_postmaster_start_time()").strip()

    code, plan = agent_runbook("plan", "restart-postgres")
    assert code == 0
    approval = person_approves(plan, reason="lab: MCP end to end")
    first = started()

    async def session() -> list[dict[str, Any]]:
        async with stdio_client(_agent_mcp()) as (read, write), \
                ClientSession(read, write) as client:
            await client.initialize()
            return [_data(await client.call_tool("run_restart_postgres",
                                                 {"approval": approval}))
                    for _ in range(2)]

    done, again = anyio.run(session)
    assert done["status"] == "ok", done
    assert started() != first
    assert again["status"] == "needs_coordination"
    assert "already used" in again["message"]
    wait_for("the engine", lambda: engine_healthy(converged))


def test_an_approval_is_for_its_zone_plan_and_host_only(converged: LabHandle,
                                                        before: dict[str, str]) -> None:
    code, plan = agent_runbook("plan", "restart-postgres")
    assert code == 0
    approval = person_approves(plan, reason="lab: misuse")
    h = plan["plan_hash"]
    attempts = {
        # another zone: the same text handed to the registry's gate action
        "zone": ("ampere", f"promote-model --model-id 1 --plan-hash {h}"),
        # another plan: a different hash on the same action
        "plan": ("ampere", f"restart-postgres --plan-hash {'0' * 64}"),
        # another host: hydra's gate knows itself as lab/hydra
        "host": ("hydra", f"restart-postgres --plan-hash {h}"),
    }
    for name, (host, args) in attempts.items():
        proc = agent_ssh(host, f"sudo -n /usr/local/sbin/gept-gate {args} --approval "
                               f"'{approval}'")
        assert proc.returncode == 3, (name, proc.stdout, proc.stderr)
    unchanged(converged, before)
    # Expired: a person's approval of one second, used after it lapsed.
    short = person_approves(plan, reason="lab: expiry", ttl="1s")
    time.sleep(2)
    proc = agent_ssh("ampere", f"sudo -n /usr/local/sbin/gept-gate restart-postgres "
                               f"--plan-hash {h} --approval '{short}'")
    assert proc.returncode == 3
    assert "expired" in proc.stdout
    unchanged(converged, before)


def test_the_agent_reaches_the_hosts_as_itself(converged: LabHandle) -> None:
    for host in ("ampere", "hydra"):
        proc = as_agent([AGENT_GEPT, "lab", "ssh", host, "--", "id", "-un"], timeout=60)
        assert proc.stdout.strip() == "gept-agent", proc.stderr
    # ... and cannot use root's key or state (the person's): both are out of its reach.
    proc = as_agent(["cat", str(Path("/root/.local/state/gept/lab/id_ed25519"))])
    assert proc.returncode != 0
    proc = as_agent(["cat", str(Path("/root/.local/state/gept/lab/approver_ed25519"))])
    assert proc.returncode != 0


def test_a_revoked_approval_is_refused_by_the_hosts(converged: LabHandle,
                                                    before: dict[str, str]) -> None:
    code, plan = agent_runbook("plan", "restart-postgres")
    assert code == 0
    revoked = person_approves(plan, reason="lab: revoked before use")
    proc = subprocess.run([sys.executable, "-m", "gept.cli", "coordinate", "revoke", revoked,
                           "--inventory", "inventory/lab.py", "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hosts"] == {"lab/ampere": "revoked"}
    raw = agent_ssh("ampere", "sudo -n /usr/local/sbin/gept-gate restart-postgres "
                              f"--plan-hash {plan['plan_hash']} --approval '{revoked}'")
    assert raw.returncode == 3
    assert "already used" in raw.stdout
    unchanged(converged, before)


def test_the_agent_cannot_apply_a_deploy_in_plan_mode_or_otherwise(
        converged: LabHandle, before: dict[str, str]) -> None:
    # pyinfra run by the agent reaches the hosts as gept-agent: plan-mode flags change
    # nothing (the guard approves nothing), and its sudo allows no deploy operation.
    intervals = dict(converged.inventory.host("ampere").data["collector_intervals"])
    change = json.dumps({**intervals, "news": 900})
    base = ["/opt/gept-agent/venv/bin/python", "-m", "pyinfra", "-y",
            str(REPO / "inventory" / "lab.py"), str(REPO / "deploys" / "site.py"),
            "--limit", "ampere", "--data", f"collector_intervals={change}"]
    for env, extra in (({"GEPT_DEPLOY_PLAN_ONLY": "1"}, []), ({}, ["-v", "--json"]),
                       ({}, ["--exclude", "--dry"])):
        proc = as_agent([*base, *extra], env=env, timeout=900)
        assert proc.returncode != 0, proc.stdout[-2000:]
    unchanged(converged, before)
