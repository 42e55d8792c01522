"""API key comparison and rate limiting (pure)."""

from __future__ import annotations

from gept.engine.security import ApiKey, RateLimiter


def test_api_key_matches_only_the_exact_key() -> None:
    key = ApiKey("s3cret-key-0123456789")
    assert key.matches("s3cret-key-0123456789")
    for wrong in (None, "", "s3cret-key-012345678", "s3cret-key-0123456789 ",
                  "S3CRET-key-0123456789", "s3cret-key-0123456789\u00e9"):
        assert not key.matches(wrong)
    assert "s3cret" not in key.fingerprint


def test_rate_limiter_refills_over_time_and_says_when() -> None:
    limiter = RateLimiter(per_minute=60)  # one token per second
    assert all(limiter.hit("a", now=0.0) == 0.0 for _ in range(60))
    wait = limiter.hit("a", now=0.0)
    assert wait == 1.0
    assert limiter.hit("b", now=0.0) == 0.0            # buckets are per client
    assert limiter.hit("a", now=1.5) == 0.0            # refilled
    assert limiter.hit("a", now=1.5) > 0


def test_rate_limiter_zero_disables_limits() -> None:
    limiter = RateLimiter(per_minute=0)
    assert all(limiter.hit("a", now=0.0) == 0.0 for _ in range(1000))
