"""Request ids, request metrics and the access log, as one plain ASGI middleware.

Plain ASGI (not ``BaseHTTPMiddleware``) because it runs on every request and must cost
microseconds. A client's ``X-Request-ID`` is kept when it looks like an id, otherwise one is
made; either way it is echoed in the response, put on every log line of the request, and
included in error bodies.

Example:
    >>> app = RequestContextMiddleware(inner_app, EngineMetrics())   # doctest: +SKIP
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gept.engine.metrics import EngineMetrics

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gept_request_id", default=None)

access_log = logging.getLogger("gept.engine.access")
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


class _RequestIds:
    """Unique ids without a syscall per request: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_ids = _RequestIds()


def install_log_record_factory() -> None:
    """Put the current request id on every log record (as ``gept_request_id``).

    Called once by the app factory (an entry point), never by library code.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_gept_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        rid = request_id_var.get()
        if rid is not None:
            record.gept_request_id = rid
        return record

    factory._gept_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RequestContextMiddleware:
    """Assigns the request id, times the request, counts it under its route template."""

    def __init__(self, app: ASGIApp, metrics: EngineMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        pair = self._children.get(key)
        if pair is None:
            pair = (self.metrics.requests.labels(method, route, str(status)),
                    self.metrics.duration.labels(route))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _VALID_ID.match(value):
                    rid = value.decode("ascii")
                break
        if rid is None:
            rid = _ids.next()
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self._observe(scope["method"], template, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status,
                                elapsed * 1000,
                                extra={"gept_status": status, "gept_route": template,
                                       "gept_duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses (413) request bodies over ``limit`` bytes, declared or streamed.

    Example:
        >>> app = BodyLimitMiddleware(inner_app, limit=65536)         # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what is received."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await _too_large(send, self.limit)
                    return
                break
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = (b'{"detail":"request body over %d bytes","error":"payload_too_large"}' % limit)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
