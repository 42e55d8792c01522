"""API key checking and per-client rate limits.

The key is compared in constant time (``hmac.compare_digest``), so response timing reveals
nothing about how much of a guess was right. Rate limits are token buckets per worker
process, keyed by the client address and whether it presented the valid key (an invalid key
never gets a bucket of its own, so rotating guesses does not buy more attempts).

Example:
    >>> limiter = RateLimiter(per_minute=2)
    >>> [limiter.hit("client", now=0.0) for _ in range(3)]
    [0.0, 0.0, 30.0]
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time


class ApiKey:
    """The configured key, held as bytes for constant-time comparison."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()
        # A short fingerprint to name the key's rate-limit bucket without holding the key.
        self.fingerprint = hashlib.sha256(self._key).hexdigest()[:12]

    def matches(self, presented: str | None) -> bool:
        """True when ``presented`` is the key (constant time for equal lengths)."""
        if presented is None:
            return False
        return hmac.compare_digest(self._key, presented.encode("utf-8", "surrogateescape"))


class RateLimiter:
    """Token buckets: ``per_minute`` requests, refilled continuously; 0 disables limits."""

    MAX_BUCKETS = 100_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, bucket: str, now: float | None = None) -> float:
        """Take one token; return 0.0 if allowed, else seconds until one is available."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(bucket, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[bucket] = (tokens, now)
            return float(max(1, math.ceil((1.0 - tokens) / self.rate)))
        if len(self._buckets) >= self.MAX_BUCKETS and bucket not in self._buckets:
            # Bounded memory: forget every bucket rather than grow without limit.
            self._buckets.clear()
        self._buckets[bucket] = (tokens - 1.0, now)
        return 0.0
