"""The people allowed to approve: principals and their OpenSSH public keys.

They are inventory group data (``approvers = {"alice": "ssh-ed25519 AAAA... alice@laptop"}``);
the deploys install them on every host as ``/etc/gept/allowed_signers`` (root-owned), the
file the host gate verifies against. Adding a person is adding a line there and converging;
revoking one is removing it and converging.

Example:
    >>> s = Signers.from_mapping({"alice": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA alice"})
    >>> s.allowed_signers_text()
    'alice namespaces="gept-approval" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\\n'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gept.core.errors import ConfigError

NAMESPACE = "gept-approval"  # ssh-keygen -n: a signature for anything else never verifies
HOST_SIGNERS_FILE = Path("/etc/gept/allowed_signers")
_PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_KEY_RE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|sk-ssh-ed25519@openssh\.com|"
                     r"sk-ecdsa-sha2-nistp256@openssh\.com|ssh-rsa) [A-Za-z0-9+/=]{16,2048}$")


def public_key(line: str) -> str:
    """``<type> <base64>`` of a public key line (the comment dropped).

    Raises:
        ConfigError: not a single OpenSSH public key line of a known type.
    """
    parts = line.strip().split()
    key = " ".join(parts[:2])
    if "\n" in line.strip() or not _KEY_RE.fullmatch(key):
        raise ConfigError(f"not an OpenSSH public key line: {line.strip()[:60]!r}")
    return key


@dataclass(frozen=True)
class Signers:
    """Principal -> public key (``<type> <base64>``)."""

    keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, approvers: Mapping[str, str]) -> Signers:
        """From inventory group data ``approvers``.

        Raises:
            ConfigError: a bad principal name or key line.
        """
        keys: dict[str, str] = {}
        for principal, line in sorted(approvers.items()):
            if not _PRINCIPAL_RE.fullmatch(principal):
                raise ConfigError(f"approver name {principal!r} must match "
                                  f"{_PRINCIPAL_RE.pattern}", field="approvers")
            keys[principal] = public_key(line)
        return cls(keys)

    @classmethod
    def from_file(cls, path: Path = HOST_SIGNERS_FILE) -> Signers:
        """From an allowed_signers file (as the deploys write it).

        Raises:
            ConfigError: the file is missing or has a malformed line.
        """
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"no allowed signers at {path}: {exc.strerror}",
                              path=str(path)) from exc
        keys: dict[str, str] = {}
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            principal, _opts, key_type, blob = ([*line.split(), "", "", ""])[:4]
            keys[principal] = public_key(f"{key_type} {blob}")
        return cls.from_mapping(keys)

    def allowed_signers_text(self) -> str:
        """The ``ssh-keygen -Y verify -f`` file: one line per person, this namespace only."""
        return "".join(f'{p} namespaces="{NAMESPACE}" {k}\n' for p, k in sorted(self.keys.items()))

    def principal_of(self, key_line: str) -> str | None:
        """The principal whose key this is, if any."""
        wanted = public_key(key_line)
        return next((p for p, k in self.keys.items() if k == wanted), None)
