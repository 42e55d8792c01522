"""pg_hba/pg_ident as the deploy renders them: who may connect as which role, and how."""

from __future__ import annotations

import sys
from pathlib import Path

import jinja2

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from inventory.group_data import all as data  # noqa: E402

TEMPLATES = REPO / "deploys" / "templates" / "postgres"


def render(name: str, **context: object) -> list[list[str]]:
    text = jinja2.Template((TEMPLATES / name).read_text()).render(**context)
    return [line.split() for line in text.splitlines() if line.strip()
            and not line.lstrip().startswith("#")]


def hba() -> list[list[str]]:
    services = [data.db_engine_user, data.db_collectors_user, data.db_user,
                data.db_registry_user]
    return render("pg_hba.conf.j2", db=data.db_name, owner=data.db_owner,
                  probe=data.db_probe_user, services=",".join(services),
                  replication="gept_replication")


def test_owner_and_probe_only_by_peer_over_the_socket() -> None:
    rules = hba()
    for role, mapname in ((data.db_owner, "gept_owner"), (data.db_probe_user, "gept_probe")):
        mine = [r for r in rules if role in r[2].split(",")]
        assert mine == [["local", data.db_name, role, "peer", f"map={mapname}"]]
    assert not [r for r in rules if r[2] == "all"], "a rule admits every role"
    hosts = [r for r in rules if r[0] == "host"]
    assert {r[3] for r in hosts} == {"127.0.0.1/32", "::1/128"}
    assert all(r[4] == "scram-sha-256" for r in hosts)
    # Beyond loopback: TLS only, and nothing but the rules below.
    assert {r[0] for r in rules} == {"local", "host", "hostssl"}


def test_other_hosts_only_over_tls_and_only_the_standby_role_replicates() -> None:
    rules = hba()
    remote = [r for r in rules if r[0] == "hostssl"]
    assert all(r[4] == "scram-sha-256" for r in remote)
    replication = [r for r in rules if r[1] == "replication"]
    assert replication == [["local", "replication", "postgres", "peer"],
                           ["hostssl", "replication", "gept_replication", "all",
                            "scram-sha-256", "clientcert=verify-ca"]]
    services = [r for r in remote if r[1] == data.db_name]
    assert len(services) == 1
    assert "gept_replication" not in services[0][2].split(",")
    assert data.db_owner not in services[0][2]
    assert data.db_probe_user not in services[0][2]


def test_probe_map_names_exactly_the_agent_root_and_postgres() -> None:
    lines = render("pg_ident.conf.j2", owner=data.db_owner, probe=data.db_probe_user,
                   probe_os_users=list(data.db_probe_os_users))
    assert sorted(line for line in lines if line[0] == "gept_probe") == [
        ["gept_probe", "gept-agent", "gept_probe"], ["gept_probe", "postgres", "gept_probe"],
        ["gept_probe", "root", "gept_probe"]]
    assert [line for line in lines if line[0] == "gept_owner"] == [
        ["gept_owner", "root", data.db_owner]]
