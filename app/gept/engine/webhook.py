"""HMAC signatures shared with GePT's web app, both ways (W10 in, E1 out).

The signature is the hex HMAC-SHA256 of ``"{timestamp}.{body}"`` with the shared secret;
``timestamp`` is milliseconds since the epoch, sent as ``X-Webhook-Timestamp`` beside
``X-Webhook-Signature``. A delivery is refused when a header is missing, the timestamp is
outside the window (5 minutes either way by default), or the signature does not match
(compared in constant time). Replays are refused by the trade registry, which records every
accepted signature (:mod:`gept.engine.trades`).

Example:
    >>> ts, sig = sign("s" * 32, b'{"a":1}', now_ms=1_700_000_000_000)
    >>> verify("s" * 32, ts, sig, b'{"a":1}', tolerance_seconds=300,
    ...        now_ms=1_700_000_001_000)
    1700000000000
"""

from __future__ import annotations

import hashlib
import hmac
import time


class WebhookRefused(Exception):
    """A delivery that is not signed, stale or forged; ``reason`` names which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, body: bytes, now_ms: int | None = None) -> tuple[str, str]:
    """``(timestamp, signature)`` headers for a delivery sent now."""
    ts = str(int(time.time() * 1000) if now_ms is None else now_ms)
    return ts, signature(secret, ts, body)


def verify(secret: str, timestamp: str | None, sig: str | None, body: bytes, *,
           tolerance_seconds: int, now_ms: int | None = None) -> int:
    """The delivery's timestamp (ms) when it is signed and fresh.

    Raises:
        WebhookRefused: ``unsigned``, ``bad_timestamp``, ``stale`` or ``bad_signature``.
    """
    if not timestamp or not sig:
        raise WebhookRefused("unsigned", "X-Webhook-Timestamp and X-Webhook-Signature are "
                                         "required")
    if not timestamp.isdigit() or len(timestamp) > 16:
        raise WebhookRefused("bad_timestamp", "X-Webhook-Timestamp must be milliseconds "
                                              "since the epoch")
    ts = int(timestamp)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - ts) > tolerance_seconds * 1000:
        raise WebhookRefused("stale", f"X-Webhook-Timestamp is more than {tolerance_seconds} s "
                                      "from the engine's clock")
    expected = signature(secret, timestamp, body)
    if not hmac.compare_digest(expected, sig.strip().lower()):
        raise WebhookRefused("bad_signature", "X-Webhook-Signature does not match the body")
    return ts
