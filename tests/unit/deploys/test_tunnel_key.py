"""Hydra's tunnel key reaches Ampere's authorized_keys as data, validated, never as shell."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from deploys.tasks import tunnel  # noqa: E402


@pytest.fixture(scope="module")
def real_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gept-db-tunnel",
                    "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text()


class FakeHost:
    """Records what would run on a host."""

    def __init__(self, stdout: str = "") -> None:
        self.commands: list[str] = []
        self.uploads: list[tuple[str, str]] = []
        self.stdout = stdout

    def run_shell_command(self, command: str, **_kw: Any) -> tuple[bool, Any]:
        self.commands.append(str(command))
        return True, SimpleNamespace(stdout=self.stdout, stderr="")

    def put_file(self, io: StringIO, dest: str, **_kw: Any) -> bool:
        self.uploads.append((dest, io.getvalue()))
        return True

    def get_temp_filename(self, _name: str) -> str:
        return "/tmp/pyinfra-upload"


def crafted(real: str) -> list[str]:
    key = real.split()[1]
    return [
        f"ssh-ed25519 {key} x'; touch /tmp/pwned; echo '",            # shell in the comment
        f"ssh-ed25519 {key} ok\nssh-ed25519 {key} second-unrestricted",  # a second line
        f'command="/bin/sh" ssh-ed25519 {key}',                         # options first
        f"ssh-ed25519 {key}$(id) c",                                    # substitution
        f"ssh-rsa {key} c",                                             # another key type
        "ssh-ed25519 " + "A" * 68 + " c",                               # not an ed25519 blob
        "",
    ]


def test_a_real_key_gives_the_restricted_line(real_key: str) -> None:
    line = tunnel.authorized_line(real_key, 5432)
    assert line == ('restrict,port-forwarding,permitopen="127.0.0.1:5432",'
                    f'command="/usr/sbin/nologin" {real_key.strip()}\n')
    assert line.count("\n") == 1


def test_crafted_keys_are_refused(real_key: str) -> None:
    for text in crafted(real_key):
        with pytest.raises(ValueError, match="ed25519"):
            tunnel.authorized_line(text, 5432)


def test_run_time_authorization_never_puts_the_key_in_a_shell(
        real_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ampere = FakeHost()
    monkeypatch.setattr(tunnel, "host", ampere)
    hydra = FakeHost(stdout=real_key)
    tunnel._authorize_at_run_time(hydra, "/var/lib/gept-tunnel/.ssh/authorized_keys",
                                  "gept-tunnel", 5432, "gept")
    assert ampere.uploads == [("/var/lib/gept-tunnel/.ssh/authorized_keys",
                               tunnel.authorized_line(real_key, 5432))]
    blob = real_key.split()[1]
    assert not any(blob in c for c in ampere.commands)

    for text in crafted(real_key):
        ampere = FakeHost()
        monkeypatch.setattr(tunnel, "host", ampere)
        with pytest.raises(ValueError):
            tunnel._authorize_at_run_time(FakeHost(stdout=text or "\n"), "/x", "u", 5432, "g")
        assert ampere.commands == []
        assert ampere.uploads == []
