"""A throwaway OpenSSH server on loopback, for tests and the benchmark (real SSH, no mocks).

It runs ``/usr/sbin/sshd -D`` with a generated host key, accepting only a generated client
key, listening on 127.0.0.1 and a free port, and writes a pyinfra inventory file naming it.

Example:
    >>> with LoopbackSshd(tmp_path) as sshd:  # doctest: +SKIP
    ...     inv = sshd.write_inventory(tmp_path / "inventory.py", ["ampere", "hydra"])
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from gept.testing.pgserver import free_port

SSHD = "/usr/sbin/sshd"
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server")


class LoopbackSshd:
    """sshd on 127.0.0.1:<free port>, keys and config under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.client_key = self.dir / "client_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self._proc: subprocess.Popen[bytes] | None = None

    def _keygen(self, path: Path) -> None:
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                           check=True, capture_output=True, timeout=30)

    def start(self) -> LoopbackSshd:
        """Generate keys and config, start sshd, wait until it accepts connections."""
        host_key = self.dir / "host_ed25519"
        self._keygen(host_key)
        self._keygen(self.client_key)
        auth = self.dir / "authorized_keys"
        auth.write_text(self.client_key.with_suffix(".pub").read_text())
        auth.chmod(0o600)
        pub = host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        sftp = next((p for p in SFTP_SERVERS if Path(p).exists()), "internal-sftp")
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {self.dir / 'sshd.pid'}", f"AuthorizedKeysFile {auth}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "StrictModes no",
            "UsePAM no", f"Subsystem sftp {sftp}", "LogLevel ERROR", "MaxSessions 100",
            "MaxStartups 100:30:200", "",
        ]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        self._proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"sshd exited: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("sshd did not start listening within 15 s")

    def stop(self) -> None:
        """Stop sshd (only the process this object started)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def host_data(self, name: str, state: Path | None = None) -> dict[str, object]:
        """Pyinfra host data reaching this sshd; each name gets its own lock dir/audit log
        (under ``state``, default the sshd's directory).
        """
        base = (state or self.dir) / name
        return {
            "ssh_hostname": "127.0.0.1", "ssh_port": self.port, "ssh_user": self.user,
            "ssh_key": str(self.client_key), "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "gept_runbook_lock_dir": str(base / "locks"),
            "gept_runbook_audit_log": str(base / "runbook-audit.jsonl"),
            "gept_runbook_no_sudo": True,
        }

    def write_inventory(self, path: Path, names: list[str], state: Path | None = None,
                        data: dict[str, object] | None = None) -> Path:
        """A pyinfra inventory: one group per name, each a host on this sshd (``data`` is
        added to every host, e.g. ``approvers``).
        """
        lines = ['"""Loopback inventory written by gept.testing.sshd."""', ""]
        for name in names:
            host_data = {"inventory_id": "loopback", **self.host_data(name, state),
                         **(data or {})}
            lines.append(f"{name} = [({name!r}, {host_data!r})]")
        lines.append("")
        path.write_text("\n".join(lines))
        return path

    def __enter__(self) -> LoopbackSshd:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
