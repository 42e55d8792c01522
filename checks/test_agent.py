"""Every host: the agent's account and what stops it (sudoers, the gate, allowed signers)."""

from __future__ import annotations

from checklib import Target

AGENT = "gept-agent"
ROOT_ONLY = {"/usr/local/sbin/gept-gate": 0o755, "/usr/local/sbin/gept-op": 0o755,
             "/etc/sudoers.d/gept-agent": 0o440, "/etc/gept/allowed_signers": 0o644,
             "/etc/gept/host.json": 0o644}


def test_agent_account_has_no_privileged_groups(target: Target) -> None:
    """gept-agent exists and is in none of the groups that are root in disguise."""
    user = target.host.user(AGENT)
    assert user.exists, "the agent's account gept-agent is missing"
    risky = set(user.groups) & {"docker", "sudo", "root", "gept", "postgres", "adm", "disk"}
    assert not risky, f"gept-agent is in {sorted(risky)}"


def test_gate_files_are_root_owned_and_not_writable_by_others(target: Target) -> None:
    """The gate, gept-op, the sudoers rules and the signers belong to root, modes exact."""
    for path, mode in ROOT_ONLY.items():
        f = target.host.file(path)
        assert f.exists, f"{path} is missing"
        assert (f.user, f.group) == ("root", "root"), f"{path} is {f.user}:{f.group}"
        assert f.mode == mode, f"{path} has mode {f.mode:o}, expected {mode:o}"


def test_sudoers_are_valid_and_exact(target: Target) -> None:
    """visudo accepts the rules; none is a wildcard or a shell."""
    check = target.run("visudo -cf /etc/sudoers.d/gept-agent")
    assert check.rc == 0, check.stderr
    text = target.run("cat /etc/sudoers.d/gept-agent").stdout
    rules = [line for line in text.splitlines() if line.startswith(f"{AGENT} ")]
    assert rules, "no rule for gept-agent"
    for rule in rules:
        command = rule.split("NOPASSWD:", 1)[1]
        assert "*" not in command, rule
        assert "ALL" not in command, rule
        assert not any(s in command for s in ("/bin/sh", "/bin/bash", "sudoedit")), rule


def test_allowed_signers_name_the_inventorys_approvers(target: Target) -> None:
    """Every approver in the inventory is an allowed signer on the host, and no one else."""
    wanted = sorted(dict(target.get("approvers") or {}))
    text = target.run("cat /etc/gept/allowed_signers").stdout
    actual = sorted(line.split()[0] for line in text.splitlines()
                    if line.strip() and not line.startswith("#"))
    assert actual == wanted, f"allowed signers {actual}, inventory approvers {wanted}"


def test_approvals_ledger_is_root_only(target: Target) -> None:
    """Spent nonces live where only root can write (an agent cannot un-spend one)."""
    d = target.host.file("/var/lib/gept/approvals")
    assert d.is_directory
    assert d.user == "root"
    assert d.mode == 0o700
