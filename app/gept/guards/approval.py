"""An approval: a person's OpenSSH signature over one action in one danger zone.

The signed message is canonical JSON naming the zone, the plan hash, the hosts (inventory
identity and host name, e.g. ``lab/ampere``), when it was issued, when it expires (at most
24 hours later, checked again at verification) and a random nonce (single use, see
:mod:`gept.guards.ledger`). People sign with ``ssh-keygen -Y sign`` — from a key file or
through ssh-agent (hardware keys work) — and everyone else only verifies, with
``ssh-keygen -Y verify`` against the allowed signers: no secret that can mint an approval
exists anywhere but in a person's key.

The text form is one line: ``gept2.<base64url(message)>.<base64url(armored signature)>``.

Example:
    >>> a = Approval("restart-postgres", "ab" * 32, ("lab/ampere",), 1000, 1900, "n1", "why")
    >>> decode(encode(a, b"sig"))[0] == a
    True
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gept.core.errors import ConfigError, InvalidInput
from gept.guards.plans import is_plan_hash
from gept.guards.signers import NAMESPACE, Signers, public_key
from gept.guards.zones import check_zone

PREFIX = "gept2"
MAX_TTL_SECONDS = 24 * 3600
CLOCK_SKEW_SECONDS = 300
_TTL_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TEXT_RE = re.compile(r"gept2\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


class Refused(Exception):
    """An approval that does not allow this action; the message says why."""


@dataclass(frozen=True)
class Approval:
    """What a person signed."""

    zone: str
    plan_hash: str
    hosts: tuple[str, ...]
    issued: int
    expires: int
    nonce: str
    reason: str
    by: str = ""  # the principal, filled in by verification (never trusted from the text)

    def message(self) -> bytes:
        """The exact bytes that are signed (``by`` is not: the signature says who)."""
        body = {"v": 2, "zone": self.zone, "plan_hash": self.plan_hash,
                "hosts": sorted(self.hosts), "iat": self.issued, "exp": self.expires,
                "nonce": self.nonce, "reason": self.reason}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def public(self) -> dict[str, Any]:
        """JSON for audit lines and listings (nothing secret in an approval)."""
        return {"zone": self.zone, "plan_hash": self.plan_hash, "hosts": list(self.hosts),
                "issued": self.issued, "expires": self.expires, "nonce": self.nonce,
                "reason": self.reason, "approved_by": self.by}


def parse_ttl(text: str | int) -> int:
    """Seconds from ``"900"``, ``"15m"``, ``"2h"``, ``"1d"``; at most 24 hours.

    Example:
        >>> parse_ttl("15m")
        900

    Raises:
        InvalidInput: an unparseable, zero or too long TTL.
    """
    if isinstance(text, int):
        seconds = text
    else:
        match = _TTL_RE.match(text)
        if not match:
            raise InvalidInput(f"ttl {text!r} is not like 900, 15m, 2h or 1d", field="ttl")
        seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)]
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise InvalidInput(f"ttl must be between 1 second and 24 hours, got {seconds}s",
                           field="ttl")
    return seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(approval: Approval, signature: bytes) -> str:
    """The one-line text of a signed approval."""
    return f"{PREFIX}.{_b64(approval.message())}.{_b64(signature)}"


def decode(text: str) -> tuple[Approval, bytes]:
    """The approval a text *claims* and its signature (nothing verified yet).

    Raises:
        Refused: not an approval's text.
    """
    parts = (text or "").strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise Refused("not an approval (expected gept2.<message>.<signature>; "
                      "old gept1 tokens are no longer accepted)")
    try:
        body: dict[str, Any] = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
        approval = Approval(str(body["zone"]), str(body["plan_hash"]),
                            tuple(str(h) for h in body["hosts"]), int(body["iat"]),
                            int(body["exp"]), str(body["nonce"]), str(body.get("reason", "")))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise Refused("malformed approval") from exc
    return approval, signature


def find(text: str) -> list[str]:
    """Every approval text inside ``text`` (for redaction)."""
    return _TEXT_RE.findall(text)


# ---------------------------------------------------------------------------- signing

def default_key() -> Path:
    """The key ``gept coordinate approve`` signs with when none is named."""
    return Path("~/.ssh/id_ed25519").expanduser()


def sign(zone: str, plan_hash: str, hosts: list[str], reason: str, ttl_seconds: int,
         key: Path | None = None, now: int | None = None) -> str:
    """Sign an approval with a person's key and return its text.

    ``key`` is a private key file, or a public key file whose private half is loaded in
    ssh-agent (``SSH_AUTH_SOCK``), as ``ssh-keygen -Y sign -f`` takes it.

    Example:
        >>> sign("restart-postgres", h, ["lab/ampere"], "pg minor upgrade", 900,
        ...      Path("~/.ssh/id_ed25519"))  # doctest: +SKIP
        'gept2.eyJ...'

    Raises:
        InvalidInput: a bad zone, plan hash, host, reason or TTL.
        ConfigError: no usable key (the message says where it looked).
    """
    check_zone(zone)
    if not is_plan_hash(plan_hash):
        raise InvalidInput("plan hash must be 64 lowercase hex characters (from `plan`)",
                           field="plan_hash")
    if not hosts or any(not _HOST_RE.fullmatch(h) for h in hosts):
        raise InvalidInput("hosts must be inventory/host names like lab/ampere "
                           "(printed by `gept runbook plan`)", field="hosts")
    if not reason.strip():
        raise InvalidInput("a reason is required for the audit trail", field="reason")
    ttl = parse_ttl(ttl_seconds)
    key = (key or default_key()).expanduser()
    if not key.exists():
        raise ConfigError(
            f"no signing key at {key}: approvals are signed by a person's SSH key "
            "(--key FILE, or a .pub whose private key is in ssh-agent); this account has "
            "none, so it cannot approve", path=str(key))
    issued = int(time.time()) if now is None else now
    approval = Approval(zone, plan_hash, tuple(sorted(set(hosts))), issued, issued + ttl,
                        secrets.token_hex(16), reason.strip()[:500])
    proc = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", NAMESPACE, "-f", str(key)],
                          input=approval.message(), capture_output=True, timeout=120,
                          check=False)
    if proc.returncode != 0 or b"BEGIN SSH SIGNATURE" not in proc.stdout:
        raise ConfigError(f"ssh-keygen could not sign with {key}: "
                          f"{proc.stderr.decode(errors='replace').strip()[-300:]}",
                          path=str(key))
    return encode(approval, proc.stdout)


def signer_key_of(key: Path) -> str:
    """The public key line of a signing key (``<key>.pub``, or the key itself if public).

    Raises:
        ConfigError: no public half next to it.
    """
    pub = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    try:
        return public_key(pub.read_text())
    except OSError as exc:
        raise ConfigError(f"no public key at {pub}", path=str(pub)) from exc


# ---------------------------------------------------------------------------- verifying

def verify(text: str, signers: Signers, *, zone: str, plan_hash: str, host: str,
           now: int | None = None) -> Approval:
    """The approval, when ``text`` allows ``zone`` / ``plan_hash`` on ``host`` right now.

    Checks, in order: the text parses; a key among ``signers`` signed exactly these bytes in
    the approvals namespace (``ssh-keygen -Y find-principals`` then ``-Y verify``); the zone,
    the plan hash and the host are the ones asked for; it was issued at most 24 hours before
    it expires, is not from the future, and has not expired. The nonce is not checked here
    (:mod:`gept.guards.ledger` does, under a lock).

    Example:
        >>> verify(text, signers, zone="restart-postgres", plan_hash=h,
        ...        host="lab/ampere").by  # doctest: +SKIP
        'alice'

    Raises:
        Refused: the reason a person would want to read.
    """
    approval, signature = decode(text)
    if not signers.keys:
        raise Refused("no approvers are configured (inventory group data `approvers`)")
    principal = _verified_principal(approval.message(), signature, signers)
    approval = Approval(approval.zone, approval.plan_hash, approval.hosts, approval.issued,
                        approval.expires, approval.nonce, approval.reason, principal)
    moment = int(time.time()) if now is None else now
    if approval.zone != zone:
        raise Refused(f"approval is for zone {approval.zone!r}, not {zone!r}")
    if approval.plan_hash != plan_hash:
        raise Refused("approval is for another plan (the plan changed: re-plan and re-approve)")
    if host not in approval.hosts:
        raise Refused(f"approval is for hosts {list(approval.hosts)}, not {host!r}")
    if approval.expires - approval.issued > MAX_TTL_SECONDS:
        raise Refused("approval lives longer than 24 hours")
    if approval.issued > moment + CLOCK_SKEW_SECONDS:
        raise Refused("approval is issued in the future")
    if approval.expires <= moment:
        raise Refused("approval expired")
    return approval


def _verified_principal(message: bytes, signature: bytes, signers: Signers) -> str:
    with tempfile.TemporaryDirectory(prefix="gept-verify-") as tmp:
        allowed = Path(tmp) / "allowed_signers"
        allowed.write_text(signers.allowed_signers_text())
        sig = Path(tmp) / "approval.sig"
        sig.write_bytes(signature)
        found = _keygen(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed)], b"")
        principals = [p for p in found.stdout.decode(errors="replace").split() if p]
        if found.returncode != 0 or not principals:
            raise Refused("not signed by an allowed approver")
        principal = principals[0]
        checked = _keygen(["-Y", "verify", "-f", str(allowed), "-I", principal, "-n",
                           NAMESPACE, "-s", str(sig)], message)
        if checked.returncode != 0:
            raise Refused("bad signature (the approval was altered, or signed for "
                          "something else)")
        return principal


def _keygen(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    # A fixed, absolute program: PATH is the caller's and the caller may be the agent.
    program = "/usr/bin/ssh-keygen" if os.path.exists("/usr/bin/ssh-keygen") else "ssh-keygen"
    return subprocess.run([program, *args], input=stdin, capture_output=True, timeout=30,
                          check=False)
