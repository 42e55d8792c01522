"""Which User-Agents the simulator refuses, as the real prices API does.

The OSRS Wiki asks every client to name itself and a contact, and pre-emptively blocks
(403) requests with no User-Agent or a library's default one (``python-requests``,
``curl``, ``Java``, ``Python-urllib`` and their kind). The simulator refuses the same, so a
collector that forgot its agent fails in tests, not in production.

Example:
    >>> blocked("python-requests/2.31.0"), blocked(""), blocked("curl/8.5.0")
    (True, True, True)
    >>> blocked("gept-collector/0.1 (ops@gept.example)")
    False
"""

from __future__ import annotations

BLOCKED_PREFIXES = ("python-requests", "python-urllib", "python-httpx", "aiohttp", "curl",
                    "wget", "java", "apache-httpclient", "okhttp", "go-http-client",
                    "libwww-perl", "node-fetch", "axios")
"""Default agents of HTTP libraries and tools (compared case-insensitively, as prefixes)."""
PRICE_PATHS = frozenset({"/latest", "/5m", "/1h", "/24h", "/mapping", "/timeseries",
                         "/volumes"})
"""The prices API's endpoints; the news feed and the player count page are other sites."""


def blocked(user_agent: str | None) -> bool:
    """Whether the real prices API would answer this agent with 403."""
    agent = (user_agent or "").strip().lower()
    return not agent or agent.startswith(BLOCKED_PREFIXES)
