"""The lab's pure parts: topology, image recipe, docker run flags, keys, engine errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gept.core.errors import ConfigError, Failed, InvalidInput
from gept.lab import engine as lab_engine
from gept.lab.engine import DockerEngine
from gept.lab.hosts import run_argv
from gept.lab.image import LAB_PACKAGES, ImageRecipe
from gept.lab.keys import known_hosts_line, write_ssh_config
from gept.lab.proc import run
from gept.lab.state import host_data
from gept.lab.topology import LabTopology


def topo(tmp_path: Path, **env: str) -> LabTopology:
    return LabTopology.from_env({"GEPT_LAB_STATE_DIR": str(tmp_path), **env})


def test_ports_shift_with_the_offset_and_names_with_the_prefix(tmp_path: Path) -> None:
    lab = topo(tmp_path, GEPT_LAB_PREFIX="second-", GEPT_LAB_PORT_OFFSET="100")
    ampere = lab.host("ampere")
    assert ampere.container == "second-ampere"
    assert lab.network == "second-net"
    assert ampere.published == {"ssh": 2321, "engine": 18100, "engine_tls": 18543,
                                "status": 18180, "prometheus": 19190, "alertmanager": 19193,
                                "grafana": 13101}
    assert lab.host("hydra").published == {"ssh": 2322}


@pytest.mark.parametrize(("var", "value"), [
    ("GEPT_LAB_PORT_OFFSET", "ten"), ("GEPT_LAB_PORT_OFFSET", "-5"),
    ("GEPT_LAB_PREFIX", "Bad Prefix!"),
])
def test_bad_environment_names_the_variable(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        topo(tmp_path, **{var: value})


def test_unknown_host_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="ampere, hydra"):
        topo(tmp_path).host("zeus")


def test_default_state_dir_is_outside_the_repo() -> None:
    state = LabTopology.from_env({}).state_dir
    assert state == Path.home() / ".local" / "state" / "gept" / "lab"
    assert LabTopology.from_env({"XDG_STATE_HOME": "/xdg"}).state_dir == Path("/xdg/gept/lab")
    other = LabTopology.from_env({"GEPT_LAB_PREFIX": "ci-"}).state_dir
    assert other.name == "lab-ci"


def test_docker_run_publishes_only_on_loopback_and_never_privileged(tmp_path: Path) -> None:
    lab = topo(tmp_path)
    argv = run_argv(lab.host("ampere"), lab, "img:1")
    published = [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]
    assert published
    assert all(p.startswith("127.0.0.1:") for p in published)
    assert "127.0.0.1:18000:8000" in published
    assert "--privileged" not in argv
    assert argv[argv.index("--network-alias") + 1] == "ampere"
    assert "gept-lab-ampere-docker:/var/lib/docker" in argv
    assert argv[argv.index("SYS_RESOURCE") - 1:][:2] == ["--cap-drop", "SYS_RESOURCE"]
    assert argv[-1] == "img:1"


def test_image_tag_follows_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\nA\n")
    base = ImageRecipe.default(extra_ca_dir=None)
    same = ImageRecipe.default(extra_ca_dir=None)
    with_ca = ImageRecipe.default(extra_ca_dir=tmp_path)
    more = ImageRecipe(base.mirror, base.base_includes, (*LAB_PACKAGES, "htop"))
    assert base.systemd_tag() == same.systemd_tag()
    assert with_ca.systemd_tag() != base.systemd_tag()
    assert with_ca.base_tag() == base.base_tag()  # the CA step does not re-run debootstrap
    assert more.systemd_tag() != base.systemd_tag()
    assert with_ca.context_files()["ca/corp.crt"].startswith(b"-----BEGIN")
    dockerfile = base.context_files()["Dockerfile"].decode()
    # daemon.json is in place before docker.io installs; services never start in the build
    assert dockerfile.index("daemon.json") < dockerfile.index("apt-get install")
    assert "rm -f /etc/ssh/ssh_host_* /usr/sbin/policy-rc.d" in dockerfile
    with pytest.raises(ConfigError, match="extra trusted CAs"):
        ImageRecipe.default(extra_ca_dir=tmp_path / "missing")


def test_known_hosts_and_ssh_config(tmp_path: Path) -> None:
    assert known_hosts_line(2221, "ssh-ed25519 AAAA root@ampere") == \
        "[127.0.0.1]:2221 ssh-ed25519 AAAA"
    with pytest.raises(Failed):
        known_hosts_line(2221, "garbage")
    lab = topo(tmp_path)
    write_ssh_config(lab)
    text = lab.ssh_config_path.read_text()
    assert "StrictHostKeyChecking yes" in text
    assert f"UserKnownHostsFile {lab.known_hosts_path}" in text
    assert lab.ssh_config_path.stat().st_mode & 0o077 == 0


def test_inventory_data_without_a_running_lab(tmp_path: Path) -> None:
    data = host_data(topo(tmp_path, GEPT_LAB_PORT_OFFSET="200"))
    assert data["hydra"]["ssh_port"] == 2422
    assert data["ampere"]["published_ports"]["grafana"] == 13201
    assert data["ampere"]["service_ports"]["grafana"] == 3001
    assert data["ampere"]["ssh_strict_host_key_checking"] == "yes"
    assert data["ampere"]["ssh_host_public_key"] == ""


def test_commands_time_out_with_a_clear_error() -> None:
    with pytest.raises(Failed, match="timed out after 1 s"):
        run(["sleep", "5"], timeout=1, what="sleepy")
    with pytest.raises(Failed, match="not installed"):
        run(["/nonexistent/tool"], timeout=5)


def test_engine_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           ) -> None:
    fake = tmp_path / "dockerd"
    fake.write_text("#!/bin/sh\necho 'failed to start daemon: no space left' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(lab_engine, "DOCKERD", fake)
    engine = DockerEngine(client="/usr/bin/docker",
                          env={"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"},
                          runtime_dir=tmp_path / "rt")
    assert engine.is_running() is False
    with pytest.raises(Failed, match=r"docker engine could not start: .*no space left"):
        engine.ensure_running()
    monkeypatch.setattr(lab_engine, "DOCKERD", tmp_path / "missing")
    with pytest.raises(Failed, match="dockerd is missing"):
        engine.ensure_running()
