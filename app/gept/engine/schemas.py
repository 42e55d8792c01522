"""Response shapes of the engine's API (they are the OpenAPI document clients build against).

Every data response carries ``freshness``: the batch it was computed from, its age, and
``stale: true`` once that age passes ``GEPT_STALE_AFTER_SECONDS``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class FreshnessOut(BaseModel):
    """Which predictions batch a response is based on, and how old it is."""

    batch_time: datetime | None = Field(description="Time of the newest batch (UTC)")
    age_seconds: float | None
    stale: bool = Field(description="True when the batch is older than stale_after_seconds")
    stale_after_seconds: int


class RecommendationOut(BaseModel):
    """One flip: place a buy offer, then a sell offer; profits are after GE tax."""

    id: str = Field(description="Stable id: batch time, item, window and offset")
    item_id: int
    item_name: str
    buy_price: int
    sell_price: int
    quantity: int
    capital_required: int
    window_hours: int
    offset_pct: float
    fill_probability: float
    expected_value: float
    score: float = Field(description="expected_value x fill_probability (the ranking key)")
    tax: int = Field(description="GE tax on selling the whole quantity")
    profit_if_filled: int = Field(description="Profit after tax when both offers fill")
    expected_profit: int = Field(description="profit_if_filled x fill_probability")
    confidence: str
    buy_limit: int | None
    volume_24h: int | None
    model_id: int | None
    batch_time: datetime


class RecommendationsOut(BaseModel):
    """The best configuration per item, best first, at most ``slots`` of them."""

    recommendations: list[RecommendationOut]
    capital: int
    capital_per_slot: int
    slots: int
    style: str
    risk: str
    freshness: FreshnessOut


class RecommendationDetailOut(BaseModel):
    """One recommendation looked up by its id."""

    recommendation: RecommendationOut
    freshness: FreshnessOut


class PredictionRowOut(BaseModel):
    """One configuration (window, offset) of an item in a batch."""

    hour_offset: int
    offset_pct: float
    fill_probability: float
    expected_value: float
    buy_price: int
    sell_price: int
    confidence: str
    model_id: int | None


class ItemPredictionsOut(BaseModel):
    """All of an item's predictions in the newest batch, and the best of them."""

    item_id: int
    item_name: str
    buy_limit: int | None
    best: PredictionRowOut | None = Field(description="Highest expected_value x fill_probability")
    predictions: list[PredictionRowOut]
    freshness: FreshnessOut


class ModelOut(BaseModel):
    """A model registry entry (no paths or artifacts)."""

    id: int
    scope: str
    run_id: str
    status: str
    status_changed_at: datetime
    trained_at: datetime
    activated_at: datetime | None
    mean_auc: float | None
    validation_auc: float | None
    validation_passed: bool
    windows_hours: list[int]
    n_samples: int | None


class ModelsOut(BaseModel):
    """Registry entries, ACTIVE first."""

    models: list[ModelOut]
    active: int
    freshness: FreshnessOut


class DatabaseCheck(BaseModel):
    """Whether PostgreSQL answered, and how fast."""

    reachable: bool
    latency_ms: float | None


class HealthOut(BaseModel):
    """Overall status: ``error`` (database unreachable or no batch), ``degraded`` (stale batch
    or no ACTIVE model) or ``ok``.
    """

    status: Literal["ok", "degraded", "error"]
    reasons: list[str]
    database: DatabaseCheck
    predictions_age_seconds: float | None
    models_active: int | None
    version: str
    uptime_seconds: float
    freshness: FreshnessOut


class ReadyOut(BaseModel):
    """Readiness: the database answers and a predictions batch exists."""

    ready: bool
    reason: str | None
    freshness: FreshnessOut


class ErrorOut(BaseModel):
    """Every error body: a message, and for 422 the offending fields."""

    detail: object
    error: str
    fields: list[str] | None = None
    request_id: str | None = None


ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut, "description": text} for code, text in (
        (401, "Missing or wrong X-API-Key"), (404, "Unknown item or recommendation"),
        (422, "Invalid parameter (the field is named in `fields`)"),
        (429, "Rate limit exceeded (see Retry-After)"),
        (503, "PostgreSQL unreachable or no predictions batch yet (see Retry-After)"))
}
"""Error answers every protected route documents."""
