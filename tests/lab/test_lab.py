"""The lab is a real two-host copy of production: systemd, sshd, DNS, Docker, apt, HTTPS."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gept.inventory import fabric_connection, testinfra_host
from gept.lab.engine import DockerEngine
from gept.lab.lab import Lab
from gept.lab.topology import LABEL, PORTS, LabTopology

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

HOSTS = ("ampere", "hydra")


def test_up_twice_reuses_the_running_hosts(lab: LabHandle) -> None:
    again = lab.lab.up()
    assert {h["action"] for h in again["hosts"].values()} == {"reused"}
    assert again["image_built"] is False
    for name in HOSTS:  # same containers, so the same host keys
        assert again["hosts"][name]["ssh_host_public_key"] == \
            lab.hosts[name]["ssh_host_public_key"]
    assert lab.lab.status()["up"] is True


@pytest.mark.parametrize("name", HOSTS)
def test_hosts_boot_systemd_and_answer_ssh(lab: LabHandle, name: str) -> None:
    out = lab.sh(name, "hostname; ps -p 1 -o comm=; systemctl is-active ssh cron").split()
    assert out == [name, "systemd", "active", "active"]
    assert lab.run(name, "systemctl is-system-running").stdout.strip() in ("running", "degraded")


def test_ssh_is_published_only_on_loopback(lab: LabHandle) -> None:
    engine = DockerEngine.default()
    for name in HOSTS:
        doc = json.loads(engine.docker("container", "inspect", lab.hosts[name]["container"],
                                       timeout=30).stdout)[0]
        bindings = [b for binds in doc["HostConfig"]["PortBindings"].values() for b in binds]
        assert bindings
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    outside = _non_loopback_address()
    if outside:  # nothing answers the SSH port on this machine's own network address
        with pytest.raises(OSError):
            socket.create_connection((outside, lab.hosts["ampere"]["ssh_port"]), timeout=3)


def test_host_keys_are_checked(lab: LabHandle, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    topo = lab.lab.topology
    proc = subprocess.run(
        ["ssh", "-F", str(topo.ssh_config_path), "-o", f"UserKnownHostsFile={empty}",
         "ampere", "true"], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode != 0
    assert "host key" in proc.stderr.lower()
    # the two hosts from one image have different host keys
    assert lab.hosts["ampere"]["ssh_host_public_key"] != lab.hosts["hydra"]["ssh_host_public_key"]


def test_hosts_resolve_each_other_and_hydra_reaches_ampere_ssh(lab: LabHandle) -> None:
    assert lab.sh("hydra", "getent hosts ampere").split()[1] == "ampere"
    assert lab.sh("ampere", "getent hosts hydra").split()[1] == "hydra"
    lab.sh("hydra", "nc -z -w 5 ampere 22")


def test_nested_docker_runs_containers_with_the_systemd_cgroup_driver(lab: LabHandle) -> None:
    info = lab.sh("ampere", "docker info --format '{{.Driver}} {{.CgroupDriver}}'").split()
    assert info == ["overlay2", "systemd"]
    # A tiny image built from the host's own files: no registry needed.
    out = lab.sh("ampere", """
        set -e
        tar -ch -C / usr/bin/echo lib64/ld-linux-x86-64.so.2 lib/x86_64-linux-gnu/libc.so.6 \
          2>/dev/null | docker import - gept-labtest/echo:1 >/dev/null
        docker run --rm gept-labtest/echo:1 /usr/bin/echo nested-ok
        docker rmi gept-labtest/echo:1 >/dev/null
    """, timeout=120)
    assert out.strip() == "nested-ok"


def test_postgresql_from_apt_runs_under_systemd(lab: LabHandle) -> None:
    out = lab.sh("ampere", "systemctl is-active postgresql@15-main && "
                           "runuser -u postgres -- psql -tAc 'select 1'")
    assert out.split() == ["active", "1"]


def test_apt_reaches_the_debian_mirror(lab: LabHandle) -> None:
    out = lab.sh("hydra", "apt-get update -q 2>&1 | tail -n 3", timeout=180)
    assert "Err:" not in out
    assert "Reading package lists" in out


def test_https_to_pypi_trusts_this_machines_cas(lab: LabHandle) -> None:
    lab.sh("hydra", "curl -sSf -o /dev/null https://pypi.org/simple/pip/", timeout=60)
    lab.sh("hydra", "python3 -c \"import urllib.request as u; "
                    "u.urlopen('https://pypi.org/simple/six/', timeout=30).read()\"", timeout=60)


def test_inventory_adapter_reaches_the_lab_with_strict_host_keys(lab: LabHandle) -> None:
    ampere = lab.inventory.host("ampere")
    assert testinfra_host(ampere).check_output("hostname") == "ampere"
    conn = fabric_connection(lab.inventory.host("hydra"))
    try:
        assert conn.run("hostname", hide=True, in_stream=False, timeout=30).stdout.strip() \
            == "hydra"
    finally:
        conn.close()


def test_pyinfra_reaches_the_lab_through_the_inventory(lab: LabHandle) -> None:
    exe = Path(sys.executable).with_name("pyinfra")  # the venv running the tests
    proc = subprocess.run(
        [str(exe), "-y", str(lab.inventory_path), "exec", "--", "hostname"],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
        cwd=str(lab.inventory_path.parents[1]))
    out = proc.stdout + proc.stderr  # pyinfra prints command output on stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"\[ampere\]\s+ampere$", out, re.M)
    assert re.search(r"\[hydra\]\s+hydra$", out, re.M)


def test_a_second_lab_coexists_and_down_removes_everything(tmp_path: Path,
                                                          lab: LabHandle) -> None:
    offset = _free_offset()  # other labs (other sessions) may be running on this machine
    env = {**os.environ, "GEPT_LAB_PREFIX": "gept-labtest-", "GEPT_LAB_PORT_OFFSET": str(offset),
           "GEPT_LAB_STATE_DIR": str(tmp_path / "state")}
    second = Lab(LabTopology.from_env(env), DockerEngine.default())
    try:
        report = second.up()
        assert report["hosts"]["ampere"]["ssh_port"] == 2221 + offset
        assert second.run("hydra", "getent hosts ampere").returncode == 0
        # the first lab is untouched
        assert lab.run("ampere", "true").returncode == 0
    finally:
        second.down()
    engine = DockerEngine.default()
    label = f"label={LABEL}=gept-labtest-"
    for kind in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
        assert engine.docker(*kind, "-q", "--filter", label, timeout=30).stdout.strip() == ""
    assert not second.topology.state_path.exists()
    assert lab.lab.status()["up"] is True


def _free_offset() -> int:
    """A port offset at which every published port of a lab is free on 127.0.0.1."""
    ports = [pub for svc in PORTS.values() for _inner, pub in svc.values()]
    for offset in range(700, 30000, 97):
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return offset
    pytest.fail("no free port offset for a second lab")


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            addr: str = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr
