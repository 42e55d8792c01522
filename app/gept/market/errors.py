"""Errors of the OSRS Wiki client. All are ``UpstreamError`` (exit code 1).

Each names the endpoint, and where it helps the field, so an operator reading a log line
knows which part of which response was wrong.

Example:
    >>> err = MalformedResponse("/5m", "data.4151.avgHighPrice", "expected an integer, got str")
    >>> err.message
    "/5m: malformed response at 'data.4151.avgHighPrice': expected an integer, got str"
    >>> err.exit_code
    1
"""

from __future__ import annotations

from typing import Any

from gept.core.errors import UpstreamError


class MalformedResponse(UpstreamError):
    """The body was not the JSON/XML/HTML shape the endpoint promises."""

    def __init__(self, endpoint: str, field: str, problem: str, **details: Any) -> None:
        super().__init__(f"{endpoint}: malformed response at {field!r}: {problem}",
                         endpoint=endpoint, field=field, **details)
        self.endpoint = endpoint
        self.field = field


class ResponseTooLarge(MalformedResponse):
    """The body exceeded the size limit for its endpoint (guards memory and XML bombs)."""


class UpstreamHTTPError(UpstreamError):
    """The server answered with an HTTP error status."""

    def __init__(self, endpoint: str, status: int, retry_after: float | None = None,
                 **details: Any) -> None:
        super().__init__(f"{endpoint}: HTTP {status}", endpoint=endpoint, http_status=status,
                         **details)
        self.endpoint = endpoint
        self.http_status = status
        self.retry_after = retry_after


class UpstreamTimeout(UpstreamError):
    """The server did not send the whole response within the timeout."""

    def __init__(self, endpoint: str, timeout: float, **details: Any) -> None:
        super().__init__(f"{endpoint}: no complete response within {timeout:g} s",
                         endpoint=endpoint, timeout=timeout, **details)
        self.endpoint = endpoint


class UpstreamUnreachable(UpstreamError):
    """The connection failed (refused, reset, DNS) before a response arrived."""

    def __init__(self, endpoint: str, reason: str, **details: Any) -> None:
        super().__init__(f"{endpoint}: unreachable: {reason}", endpoint=endpoint,
                         reason=reason, **details)
        self.endpoint = endpoint


class CircuitOpen(UpstreamError):
    """Too many consecutive failures: calls are refused until the cool-down ends."""

    def __init__(self, endpoint: str, retry_in: float, **details: Any) -> None:
        super().__init__(
            f"{endpoint}: circuit open after repeated upstream failures; "
            f"next trial in {retry_in:.1f} s",
            endpoint=endpoint, retry_in=round(retry_in, 3), **details)
        self.endpoint = endpoint
        self.retry_in = retry_in
