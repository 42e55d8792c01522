"""The clients' calls as the contract tests send them (web-contract.md), shared by the
contract test modules; the ``web`` fixture (a trained model's batch) is in conftest."""

from __future__ import annotations

from typing import Any

from engine_seed import HEADERS
from fastapi.testclient import TestClient

WEB_USER = "k3x9a2"                                       # the web app's short base-36 hash

W1_FIELDS = {"id": str, "item": str, "itemId": int, "buyPrice": int, "sellPrice": int,
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


def web_w1(client: TestClient, **extra: object) -> Any:
    """W1 as getRecommendations sends it (``extra`` adds or overrides parameters)."""
    params = {"user_id": WEB_USER, "capital": 1_000_000_000, "style": "hybrid",
              "risk": "medium", "slots": 8, **extra}
    resp = client.get("/api/v1/recommendations", params=params, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    return resp
