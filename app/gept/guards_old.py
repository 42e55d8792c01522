"""The five danger zones and coordination tokens (used by deploys, runbooks and `gept models`).

A danger zone is an action the operators never take alone (restart PostgreSQL, alter the
predictions schema, stop Hydra's inference, change a collector interval, write the model
registry). Code that is about to act in one calls :func:`require`; it refuses (exit 3) unless
a person made a coordination token for *that* zone and *that* exact plan with
``gept coordinate approve``.

Tokens are self-contained and HMAC-signed::

    gept1.<base64url(payload JSON)>.<base64url(HMAC-SHA256(key, payload))>

The key lives in ``$GEPT_STATE_DIR/coordination.key`` (created 0600 on first use) or in the
file named by ``GEPT_COORDINATION_KEY_FILE``. A token names its zone, plan hash and expiry,
so it cannot be stretched to another action; a ledger (``coordination-ledger.jsonl``,
appended under ``flock``) records approvals, uses and revocations, so it cannot be replayed.
Every approval, use and refusal is written to the audit log (``$GEPT_STATE_DIR/audit.jsonl``).

Example:
    >>> h = plan_hash({"runbook": "restart-postgres", "hosts": ["ampere"]})
    >>> token = approve("restart-postgres", h, "maintenance window", 900)  # doctest: +SKIP
    >>> require("restart-postgres", h, token, action="runbook restart-postgres")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gept.core.errors import ConfigError, InvalidInput, NeedsCoordination

ZONES: tuple[str, ...] = (
    "restart-postgres",
    "predictions-schema",
    "stop-hydra-inference",
    "collector-intervals",
    "model-registry",
)

TOKEN_PREFIX = "gept1"  # noqa: S105 - a format tag, not a secret
MAX_TTL_SECONDS = 24 * 3600
REDACTED = "***redacted***"
_SECRET_KEY_RE = re.compile(r"(password|passwd|secret|api_?key|private_?key|^token$|_token$)",
                            re.IGNORECASE)
_TOKEN_RE = re.compile(r"gept1\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
_TTL_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


# ---------------------------------------------------------------------------- paths & key

def state_dir() -> Path:
    """The controller's state directory (``GEPT_STATE_DIR``), created 0700 when missing.

    Read from the environment at call time (not the cached settings) so that tests and
    sub-processes pointing at another directory are honoured.
    """
    raw = os.environ.get("GEPT_STATE_DIR")
    path = Path(raw).expanduser() if raw else Path("~/.local/state/gept").expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def audit_path() -> Path:
    """The controller's audit log: ``$GEPT_STATE_DIR/audit.jsonl``."""
    return state_dir() / "audit.jsonl"


def ledger_path() -> Path:
    """The token ledger: approvals, uses and revocations, one JSON object per line."""
    return state_dir() / "coordination-ledger.jsonl"


def _key_path() -> Path:
    raw = os.environ.get("GEPT_COORDINATION_KEY_FILE")
    return Path(raw).expanduser() if raw else state_dir() / "coordination.key"


def _load_key(create: bool) -> bytes:
    """The HMAC key; created (0600, 32 random bytes) on first approval.

    Raises:
        ConfigError: the key file is readable by others, or missing when ``create`` is False.
    """
    path = _key_path()
    if not path.exists():
        if not create:
            raise ConfigError(f"no coordination key at {path}: no token was ever approved here",
                              path=str(path))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two concurrent first approvals must not both write a key.
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"coordination key {path} has mode {stat.S_IMODE(mode):04o}; "
                          "it must be 0600", path=str(path))
    text = path.read_text().strip()
    if len(text) < 32:
        raise ConfigError(f"coordination key {path} is too short", path=str(path))
    return text.encode()


# ---------------------------------------------------------------------------- hashing

def plan_hash(obj: Any) -> str:
    """A stable hash of a plan: sha256 of its canonical JSON.

    Example:
        >>> plan_hash({"b": 1, "a": 2}) == plan_hash({"a": 2, "b": 1})
        True
    """
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_ttl(text: str | int) -> int:
    """Seconds from ``"900"``, ``"15m"``, ``"2h"``, ``"1d"``; capped at 24 hours.

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


# ---------------------------------------------------------------------------- audit

def redact(value: Any, key: str = "") -> Any:
    """Redact secrets in a JSON-like value: secret-looking keys and anything token-shaped.

    Example:
        >>> redact({"password": "hunter2", "user": "osrs"})
        {'password': '***redacted***', 'user': 'osrs'}
    """
    if key and _SECRET_KEY_RE.search(key) and value not in (None, "", REDACTED):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str) and TOKEN_PREFIX in value:
        return _TOKEN_RE.sub(REDACTED, value)
    return value


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user


@contextlib.contextmanager
def _locked_append(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def audit(event: str, **fields: Any) -> dict[str, Any]:
    """Append one JSON line to the controller's audit log; secrets are redacted.

    Every line carries the time, the event, the user, the host and the pid of the writer.

    Example:
        >>> audit("step", run_id="r1", step="health", ok=True)  # doctest: +SKIP

    Returns:
        The record as written.
    """
    record: dict[str, Any] = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": event,
        "user": _actor(),
        "controller": socket.gethostname(),
        "pid": os.getpid(),
    }
    record.update(redact(fields))
    line = json.dumps(record, default=str, sort_keys=False)
    with _locked_append(audit_path()) as fh:
        fh.write(line + "\n")
    return record


# ---------------------------------------------------------------------------- tokens

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def _check_zone(zone: str) -> None:
    if zone not in ZONES:
        raise InvalidInput(f"unknown danger zone {zone!r}; known: {', '.join(ZONES)}",
                           field="zone", zone=zone, known=list(ZONES))


def approve(zone: str, plan_hash: str, reason: str, ttl_seconds: int,
            approved_by: str | None = None) -> str:
    """Make a single-use token allowing exactly one plan in one danger zone.

    Only people call this (``gept coordinate approve``); the MCP interface does not expose it.

    Example:
        >>> approve("restart-postgres", "ab" * 32, "maintenance", 900)  # doctest: +SKIP
        'gept1.eyJ...'

    Raises:
        InvalidInput: an unknown zone, a malformed plan hash, an empty reason or a bad TTL.
    """
    _check_zone(zone)
    if not re.fullmatch(r"[0-9a-f]{64}", plan_hash or ""):
        raise InvalidInput("plan hash must be 64 lowercase hex characters (from `plan`)",
                           field="plan_hash")
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required for the audit log", field="reason")
    ttl = parse_ttl(ttl_seconds)
    now = int(time.time())
    payload: dict[str, Any] = {
        "id": secrets.token_hex(8),
        "zone": zone,
        "plan_hash": plan_hash,
        "iat": now,
        "exp": now + ttl,
        "by": approved_by or _actor(),
        "reason": reason.strip()[:500],
    }
    body = _b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    token = f"{TOKEN_PREFIX}.{body}.{_sign(_load_key(create=True), body)}"
    with _locked_append(ledger_path()) as fh:
        fh.write(json.dumps({"op": "approved", **payload}) + "\n")
    audit("approved", token_id=payload["id"], zone=zone, plan_hash=plan_hash,
          expires=datetime.fromtimestamp(payload["exp"], UTC).isoformat(),
          approved_by=payload["by"], reason=payload["reason"])
    return token


def _decode(token: str) -> dict[str, Any]:
    """The verified payload of a token; raises ValueError with a reason otherwise."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise ValueError("malformed token")
    try:
        key = _load_key(create=False)
    except ConfigError as exc:
        raise ValueError(exc.message) from exc
    if not hmac.compare_digest(_sign(key, parts[1]), parts[2]):
        raise ValueError("bad signature (token altered or made with another key)")
    try:
        payload: dict[str, Any] = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("malformed token payload") from exc
    return payload


def peek_zone(token: str) -> str | None:
    """The zone a token *claims* (unverified; only to pick among several tokens).

    Example:
        >>> peek_zone("not-a-token") is None
        True
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    try:
        zone = json.loads(_unb64(parts[1])).get("zone")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return zone if isinstance(zone, str) else None


def _read_ledger() -> list[dict[str, Any]]:
    path = ledger_path()
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def _refuse(zone: str, plan_hash: str, action: str, why: str, token_id: str | None) -> None:
    audit("refused", zone=zone, plan_hash=plan_hash, action=action, reason=why,
          token_id=token_id)
    raise NeedsCoordination(
        f"{action} touches danger zone {zone!r}: {why}",
        zone=zone, plan_hash=plan_hash, reason=why,
        how=(f"gept coordinate approve --zone {zone} --plan-hash {plan_hash} "
             "--reason '<why>' --ttl 15m, then pass the token with --token "
             "(or GEPT_COORDINATION_TOKEN)"),
    )


def _verified(zone: str, plan_hash: str, token: str | None, action: str,
              ) -> dict[str, Any]:
    """The payload of a token valid for this zone and plan (not yet consumed), or refuse."""
    _check_zone(zone)
    if token is None:
        token = os.environ.get("GEPT_COORDINATION_TOKEN") or None
    if not token:
        _refuse(zone, plan_hash, action, "a coordination token is required", None)
        raise AssertionError("unreachable")  # pragma: no cover
    try:
        payload = _decode(token)
    except ValueError as exc:
        _refuse(zone, plan_hash, action, f"invalid token: {exc}", None)
        raise AssertionError("unreachable") from exc  # pragma: no cover
    token_id = str(payload.get("id", ""))
    if payload.get("zone") != zone:
        _refuse(zone, plan_hash, action,
                f"token is for zone {payload.get('zone')!r}, not {zone!r}", token_id)
    if not hmac.compare_digest(str(payload.get("plan_hash", "")), plan_hash):
        _refuse(zone, plan_hash, action,
                "token was approved for another plan (the plan changed; re-plan and re-approve)",
                token_id)
    if int(payload.get("exp", 0)) <= int(time.time()):
        _refuse(zone, plan_hash, action, "token expired", token_id)
    return payload


def _spent(token_id: str) -> str | None:
    for row in _read_ledger():
        if row.get("id") == token_id and row.get("op") in ("used", "revoked"):
            return str(row["op"])
    return None


def check(zone: str, plan_hash: str, token: str | None, *, action: str) -> str:
    """Refuse now (exit 3) unless ``token`` would pass :func:`require`; does not consume it.

    Lets a runner refuse before it connects anywhere, yet consume the token only once its
    preconditions hold (a failed precondition does not burn a person's approval).

    Example:
        >>> check("restart-postgres", h, token, action="runbook restart-postgres")  # doctest: +SKIP
        '3f2a9c0d1e2b4a5c'

    Raises:
        NeedsCoordination: as :func:`require` would.
    """
    payload = _verified(zone, plan_hash, token, action)
    token_id = str(payload.get("id", ""))
    spent = _spent(token_id)
    if spent:
        _refuse(zone, plan_hash, action, f"token already {spent}", token_id)
    return token_id


def require(zone: str, plan_hash: str, token: str | None, *, action: str) -> str:
    """Allow an action in a danger zone only with a valid coordination token, and consume it.

    The token (or ``GEPT_COORDINATION_TOKEN`` when ``token`` is None) must be signed by this
    controller's key, for this ``zone`` and this ``plan_hash``, unexpired, unrevoked and
    unused. On success the token is marked used (single use) and the use is audited.

    Example:
        >>> require("restart-postgres", h, token,
        ...         action="runbook restart-postgres")  # doctest: +SKIP
        '3f2a9c0d1e2b4a5c'

    Returns:
        The token id that was consumed.

    Raises:
        InvalidInput: unknown zone.
        NeedsCoordination: no token, or a token that does not allow this exact plan (exit 3).
    """
    payload = _verified(zone, plan_hash, token, action)
    token_id = str(payload.get("id", ""))
    # Check-and-mark under one exclusive lock so two concurrent runs cannot both use it.
    with _locked_append(ledger_path()) as fh:
        spent = _spent(token_id)
        if spent:
            _refuse(zone, plan_hash, action, f"token already {spent}", token_id)
        fh.write(json.dumps({"op": "used", "id": token_id, "at": int(time.time()),
                             "action": action, "by": _actor()}) + "\n")
    audit("coordination_used", token_id=token_id, zone=zone, plan_hash=plan_hash,
          action=action, approved_by=payload.get("by"), reason=payload.get("reason"))
    return token_id


def list_tokens() -> list[dict[str, Any]]:
    """Every approved token with its state: ``active``, ``used``, ``revoked`` or ``expired``.

    Example:
        >>> [t["state"] for t in list_tokens()]  # doctest: +SKIP
        ['used', 'active']
    """
    rows = _read_ledger()
    final: dict[str, str] = {}
    for row in rows:
        if row.get("op") in ("used", "revoked"):
            final.setdefault(str(row.get("id")), str(row["op"]))
    now = int(time.time())
    out = []
    for row in rows:
        if row.get("op") != "approved":
            continue
        tid = str(row["id"])
        state = final.get(tid) or ("expired" if int(row.get("exp", 0)) <= now else "active")
        out.append({
            "id": tid, "zone": row.get("zone"), "plan_hash": row.get("plan_hash"),
            "approved_by": row.get("by"), "reason": row.get("reason"),
            "approved_at": datetime.fromtimestamp(int(row.get("iat", 0)), UTC).isoformat(),
            "expires": datetime.fromtimestamp(int(row.get("exp", 0)), UTC).isoformat(),
            "state": state,
        })
    return out


def revoke(token_id: str) -> dict[str, Any]:
    """Revoke an approved token so it can no longer be used.

    Example:
        >>> revoke("3f2a9c0d1e2b4a5c")["state"]  # doctest: +SKIP
        'revoked'

    Raises:
        InvalidInput: no approved token has that id.
    """
    known = {t["id"]: t for t in list_tokens()}
    if token_id not in known:
        raise InvalidInput(f"no approved token with id {token_id!r}", field="token_id")
    with _locked_append(ledger_path()) as fh:
        fh.write(json.dumps({"op": "revoked", "id": token_id, "at": int(time.time()),
                             "by": _actor()}) + "\n")
    audit("revoked", token_id=token_id, zone=known[token_id]["zone"],
          plan_hash=known[token_id]["plan_hash"])
    return {**known[token_id], "state": "revoked"}
