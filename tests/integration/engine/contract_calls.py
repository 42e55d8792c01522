"""The clients' calls as the contract tests send them (web-contract.md), shared by the
contract test modules; the ``web`` fixture (a trained model's batch) is in conftest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine_seed import HEADERS
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    import httpx2  # what starlette's TestClient answers with (mcp installs it)

Param = str | int | float | bool | None           # a query parameter's value
Kind = type | tuple[type, ...]                    # a field's type(s), for isinstance

WEB_USER = "k3x9a2"                                       # the web app's short base-36 hash

W1_FIELDS: dict[str, Kind] = {
    "id": str, "item": str, "itemId": int, "buyPrice": int, "sellPrice": int,
    "offsetPct": float, "quantity": int, "capitalRequired": int,
    "expectedProfit": int, "confidence": str, "fillProbability": float,
    "fillConfidence": str, "expectedHours": int, "trend": str, "reason": str,
    "volume24h": (int, type(None)), "priceHistory": (list, type(None)),
    "modelId": (int, type(None)), "isMultiLimitStrategy": bool}


def items_of(client: TestClient) -> list[dict[str, Any]]:
    """W5's items, as many as one page holds."""
    resp = client.post("/api/v1/opportunities", json={"limit": 200}, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def web_w1(client: TestClient, **extra: Param) -> httpx2.Response:
    """W1 as getRecommendations sends it (``extra`` adds or overrides parameters)."""
    params: dict[str, Param] = {"user_id": WEB_USER, "capital": 1_000_000_000, "style": "hybrid",
              "risk": "medium", "slots": 8, **extra}
    resp = client.get("/api/v1/recommendations", params=params, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    return resp
