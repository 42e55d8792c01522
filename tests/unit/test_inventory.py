"""The inventory adapter reads pyinfra inventory files the way pyinfra does."""

from __future__ import annotations

import textwrap
import urllib.parse
from pathlib import Path

import pytest

from gept.core.errors import ConfigError, InvalidInput
from gept.inventory import (
    Host,
    fabric_connect_kwargs,
    fabric_connection,
    load_inventory,
    testinfra_host,
    testinfra_url,
)

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def prod(tmp_path: Path) -> Path:
    inv = write(tmp_path / "inv" / "production.py", """
        import os

        _ampere_addr = os.environ.get("TEST_AMPERE", "ampere.example")
        ampere = [("ampere", {"ssh_hostname": _ampere_addr, "ssh_user": "deploy",
                              "engine_port": 8001})]
        hydra = [("hydra", {"ssh_port": 2200})]
        gpu = (["hydra"], {"gpu": True, "engine_port": 9999})
        not_a_group = "ignored"
        _private = ["x"]
    """)
    write(tmp_path / "inv" / "group_data" / "all.py", """
        from os import path
        engine_port = 8000
        gpu = False
        env = "production"
    """)
    write(tmp_path / "inv" / "group_data" / "hydra.py", """
        inference_minute = "*/5"
    """)
    return inv


def test_groups_hosts_and_file_group(prod: Path) -> None:
    inv = load_inventory(prod)
    assert inv.names == ["ampere", "hydra"]
    assert inv.host("ampere").groups == ("ampere", "production")
    assert set(inv.host("hydra").groups) == {"hydra", "gpu", "production"}
    assert set(inv.groups) == {"ampere", "hydra", "gpu", "production"}


def test_data_precedence_host_over_group_over_all(prod: Path) -> None:
    inv = load_inventory(prod)
    ampere, hydra = inv.host("ampere"), inv.host("hydra")
    assert ampere.data["engine_port"] == 8001  # host data beats group_data/all.py
    assert hydra.data["engine_port"] == 9999  # inline group data beats all
    assert hydra.data["gpu"] is True
    assert ampere.data["gpu"] is False
    assert hydra.data["inference_minute"] == "*/5"
    assert "inference_minute" not in ampere.data
    assert "path" not in ampere.data  # imported names are not data (pyinfra #1297)


def test_override_data_wins(prod: Path) -> None:
    inv = load_inventory(prod, override_data={"engine_port": 1})
    assert {h.data["engine_port"] for h in inv.hosts} == {1}


def test_inventory_reads_environment(prod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AMPERE", "10.9.8.7")
    assert load_inventory(prod).host("ampere").ssh_hostname == "10.9.8.7"


def test_select_by_host_group_list_and_all(prod: Path) -> None:
    inv = load_inventory(prod)
    assert [h.name for h in inv.select("hydra")] == ["hydra"]
    assert [h.name for h in inv.select("gpu")] == ["hydra"]
    assert [h.name for h in inv.select("hydra,ampere")] == ["ampere", "hydra"]
    assert [h.name for h in inv.select("production")] == ["ampere", "hydra"]
    assert [h.name for h in inv.select(None)] == ["ampere", "hydra"]
    assert [h.name for h in inv.select("all")] == ["ampere", "hydra"]


def test_unknown_target_is_invalid_input_naming_known(prod: Path) -> None:
    inv = load_inventory(prod)
    with pytest.raises(InvalidInput) as err:
        inv.select("hyrda")
    assert err.value.exit_code == 2
    assert "hyrda" in err.value.message
    assert "ampere" in err.value.message
    assert "gpu" in err.value.message
    with pytest.raises(InvalidInput):
        inv.host("nope")
    with pytest.raises(InvalidInput):
        inv.select(" , ")


def test_missing_and_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_inventory(tmp_path / "nope.py")
    broken = write(tmp_path / "broken.py", "ampere = [1/0]\n")
    with pytest.raises(ConfigError, match="ZeroDivisionError"):
        load_inventory(broken)
    empty = write(tmp_path / "empty.py", "x = 1\n")
    with pytest.raises(ConfigError, match="no hosts"):
        load_inventory(empty)
    bad_host = write(tmp_path / "bad.py", "web = [('a', 'not a dict')]\n")
    with pytest.raises(ConfigError, match="name or a"):
        load_inventory(bad_host)


def test_fabric_kwargs_leave_unset_values_to_ssh_config(prod: Path) -> None:
    inv = load_inventory(prod)
    hydra = fabric_connect_kwargs(inv.host("hydra"))
    assert hydra["host"] == "hydra"
    assert hydra["port"] == 2200
    assert "user" not in hydra  # the operator's ~/.ssh/config decides
    ampere = fabric_connect_kwargs(inv.host("ampere"))
    assert ampere["user"] == "deploy"
    assert "port" not in ampere
    assert ampere["connect_timeout"] > 0


def test_production_may_not_disable_host_key_checking() -> None:
    host = Host("ampere", ("ampere",), {"ssh_strict_host_key_checking": "no"})
    with pytest.raises(ConfigError, match="refused"):
        fabric_connect_kwargs(host)
    with pytest.raises(ConfigError, match="refused"):
        testinfra_url(host)


def test_fabric_connection_refuses_unknown_host_keys(tmp_path: Path) -> None:
    import paramiko

    known = tmp_path / "known_hosts"
    known.write_text("")
    host = Host("ampere", (), {"ssh_known_hosts_file": str(known)})
    conn = fabric_connection(host)
    assert isinstance(conn.client._policy, paramiko.RejectPolicy)
    missing = Host("ampere", (), {"ssh_known_hosts_file": str(tmp_path / "none")})
    with pytest.raises(ConfigError, match="known_hosts"):
        fabric_connection(missing)


def test_testinfra_url_carries_key_port_and_config() -> None:
    host = Host("ampere", ("ampere", "lab"), {
        "ssh_hostname": "127.0.0.1", "ssh_port": 2221, "ssh_user": "root",
        "ssh_key": "/k/id", "lab_ssh_config": "/k/ssh_config", "env": "lab"})
    url = urllib.parse.urlsplit(testinfra_url(host))
    assert (url.scheme, url.username, url.hostname, url.port) == (
        "paramiko", "root", "127.0.0.1", 2221)
    query = urllib.parse.parse_qs(url.query)
    assert query["ssh_identity_file"] == ["/k/id"]
    assert query["ssh_config"] == ["/k/ssh_config"]
    ssh = urllib.parse.parse_qs(urllib.parse.urlsplit(testinfra_url(host, "ssh")).query)
    assert "StrictHostKeyChecking=yes" in ssh["ssh_extra_args"][0]


def test_testinfra_host_rejects_a_host_not_in_known_hosts(tmp_path: Path) -> None:
    """A real sshd is not needed: the key check happens before authentication."""
    import socket
    import threading

    import paramiko

    server_key = paramiko.Ed25519Key.from_private_key_file(str(_make_key(tmp_path)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]

    def serve() -> None:
        conn, _ = sock.accept()
        transport = paramiko.Transport(conn)
        transport.add_server_key(server_key)
        try:
            transport.start_server(server=paramiko.ServerInterface())
            transport.accept(1)  # keep the session open while the client checks the key
        except Exception:
            pass
        finally:
            transport.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    known = tmp_path / "known_hosts"
    known.write_text("")  # the server's key is unknown
    host = Host("x", (), {"ssh_hostname": "127.0.0.1", "ssh_port": port, "ssh_user": "root",
                          "ssh_key": str(tmp_path / "id"), "ssh_known_hosts_file": str(known)})
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _ = testinfra_host(host).backend.client  # the connection testinfra would use
    thread.join(10)
    sock.close()


def _make_key(tmp_path: Path) -> Path:
    import subprocess

    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   check=True, timeout=30)
    return key


def test_lab_inventory_file_resolves_without_a_running_lab(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEPT_LAB_STATE_DIR", str(tmp_path / "labstate"))
    monkeypatch.setenv("GEPT_LAB_PORT_OFFSET", "100")
    inv = load_inventory(REPO / "inventory" / "lab.py")
    assert inv.names == ["ampere", "hydra", "ampere-standby"]
    assert [h.name for h in inv.select("lab")] == ["ampere", "hydra", "ampere-standby"]
    assert "db_standby" in inv.host("ampere-standby").groups
    ampere = inv.host("ampere")
    assert "ampere" in ampere.groups
    assert "lab" in ampere.groups
    assert (ampere.ssh_hostname, ampere.ssh_port, ampere.ssh_user) == ("127.0.0.1", 2321, "root")
    assert ampere.data["env"] == "lab"
    assert ampere.data["published_ports"]["engine"] == 18100
    assert ampere.ssh_key == str(tmp_path / "labstate" / "id_ed25519")
    assert ampere.known_hosts_file == str(tmp_path / "labstate" / "known_hosts")
    assert not str(ampere.ssh_key).startswith(str(REPO))  # keys live outside the repo
