"""``gept-op engine-call KIND``: one call of the web app's contract, with the engine's key.

The contract's routes need ``X-API-Key``, which only root and the engine's user can read on
Ampere; the agent's health check must prove those routes answer without ever holding the
key. So this verb (root, through sudo) reads the key, makes one call of a fixed kind to
the engine on loopback, checks the shape the web app reads, and prints a one-line summary
that never contains the key. The kinds, as GePT's web app sends them
(``reference/web-contract.md``):

* ``recommendations``: W1 ``GET /api/v1/recommendations`` — 200 and a bare JSON array;
* ``opportunities``: W5 ``POST /api/v1/opportunities`` — 200 and ``items``/``total``/``has_more``;
* ``item``: W4 ``GET /api/v1/items/{id}/price-history`` of an item the engine offers — 200,
  ``history`` and ``trend``.

Read-only: none of these writes anything, and W1 is sent without ``user_id``, so the probe
is not counted as a user by crowding control (no real user is crowded out by it).

Example:
    $ sudo -n /usr/local/sbin/gept-op engine-call opportunities
    POST /api/v1/opportunities: 200, 5 of 312 opportunities (items, total, has_more)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gept.core.errors import ExitCode

KINDS = ("recommendations", "opportunities", "item")
KEY_FILE = Path("/etc/gept/engine_api_key")
ENGINE_ENV = Path("/etc/gept/engine.env")


class ProbeError(Exception):
    """The call failed or answered a shape the web app cannot read (exit 1; 2: bad kind)."""

    def __init__(self, message: str, code: int = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


def engine_url(env_file: Path = ENGINE_ENV) -> str:
    """The engine's loopback URL, from the port its environment file names (8000 default).

    Example:
        >>> engine_url(Path("/nonexistent"))
        'http://127.0.0.1:8000'
    """
    port = "8000"
    try:
        for line in env_file.read_text().splitlines():
            if line.startswith("GEPT_ENGINE_PORT="):
                port = line.split("=", 1)[1].strip().strip("'\"") or port
    except OSError:
        pass
    if not port.isdigit():
        raise ProbeError(f"{env_file}: GEPT_ENGINE_PORT={port!r} is not a port")
    return f"http://127.0.0.1:{port}"


def _key(path: Path = KEY_FILE) -> str:
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise ProbeError(f"cannot read the engine's key ({path}): {exc.strerror}") from exc
    if not key:
        raise ProbeError(f"{path} is empty")
    return key


def _json(resp: Any, what: str) -> Any:
    if resp.status_code != 200:
        raise ProbeError(f"{what}: HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        return resp.json()
    except ValueError as exc:
        raise ProbeError(f"{what}: 200 but not JSON") from exc


def call(kind: str, base: str | None = None, key: str | None = None) -> str:
    """Make one call of ``kind``; the summary line, or ``ProbeError`` saying what is wrong."""
    import httpx

    if kind not in KINDS:
        raise ProbeError(f"KIND must be one of {', '.join(KINDS)}", ExitCode.INVALID)
    base = base or engine_url()
    headers = {"X-API-Key": key or _key(), "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        try:
            if kind == "recommendations":
                what = "GET /api/v1/recommendations"
                recs = _json(client.get("/api/v1/recommendations", params={
                    "capital": 100_000_000, "style": "hybrid",
                    "risk": "medium", "slots": 8}), what)
                if not isinstance(recs, list):
                    raise ProbeError(f"{what}: not a bare array (the web app reads one)")
                return f"{what}: 200, {len(recs)} recommendations (bare array)"
            what = "POST /api/v1/opportunities"
            page = _json(client.post("/api/v1/opportunities", json={"limit": 5, "offset": 0}),
                         what)
            if not (isinstance(page, dict) and isinstance(page.get("items"), list)
                    and isinstance(page.get("total"), int) and "has_more" in page):
                raise ProbeError(f"{what}: no items/total/has_more (the home page reads them)")
            if kind == "opportunities":
                return (f"{what}: 200, {len(page['items'])} of {page['total']} opportunities "
                        "(items, total, has_more)")
            if not page["items"]:
                raise ProbeError("no opportunity to take an item from: the engine offers none")
            item = int(page["items"][0]["item_id"])
            what = f"GET /api/v1/items/{item}/price-history"
            hist = _json(client.get(f"/api/v1/items/{item}/price-history",
                                    params={"hours": 24}), what)
            if not (isinstance(hist, dict) and isinstance(hist.get("history"), list)
                    and hist.get("trend") in ("Rising", "Stable", "Falling")):
                raise ProbeError(f"{what}: no history/trend (the sparklines read them)")
            return f"{what}: 200, {len(hist['history'])} hourly points, trend {hist['trend']}"
        except httpx.HTTPError as exc:
            raise ProbeError(f"the engine at {base} did not answer: "
                             f"{type(exc).__name__}: {exc}") from exc
