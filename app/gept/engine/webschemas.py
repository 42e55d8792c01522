# ruff: noqa: N815  (the field names are the clients' contract: camelCase where they read it)
"""Response and request shapes of the clients' contract (web-contract.md), for OpenAPI and
for the contract tests. Field names and casing are the clients': camelCase where the web app
and the bot read camelCase, snake_case where they read snake_case.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OFFSET_MIN, OFFSET_MAX = 0.0125, 0.025
Sha256Hex = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the user id")


class WhyChipOut(BaseModel):
    """A short reason shown on a flip."""

    icon: str
    label: str
    type: Literal["positive", "neutral", "negative"]


class PricePoint(BaseModel):
    """One point of a recommendation's price history."""

    timestamp: str
    price: int


class WebRecommendationOut(BaseModel):
    """One recommendation as the web app (W1, W2) and the bot read it."""

    id: str = Field(description="rec_{item_id}_{YYYYMMDDHH}")
    itemId: int
    item: str
    buyPrice: int
    sellPrice: int
    offsetPct: float | None
    quantity: int
    capitalRequired: int
    expectedProfit: int = Field(description="Profit after GE tax when both offers fill")
    expectedProfitEV: int | None = Field(description="expectedProfit x fillProbability")
    confidence: Literal["high", "medium", "low"]
    fillProbability: float
    fillConfidence: Literal["Strong", "Good", "Fair"]
    trend: Literal["Rising", "Stable", "Falling"]
    expectedHours: int
    volume24h: int | None
    priceHistory: list[PricePoint] | None
    modelId: int | None
    modelStatus: str | None
    reason: str | None
    isRecommended: bool | None
    isMultiLimitStrategy: bool
    whyChips: list[WhyChipOut] | None


class FreshnessMetadataOut(BaseModel):
    """The original's freshness metadata (``include_metadata=true``)."""

    inference_at: str | None
    inference_age_seconds: float | None
    stale: bool
    stale_threshold_seconds: int


class WithMetadataOut(BaseModel):
    """``include_metadata=true``: the recommendations and their freshness."""

    recommendations: list[WebRecommendationOut]
    metadata: FreshnessMetadataOut


class AllRecommendationsOut(BaseModel):
    """``return_all=true``: every viable flip, best first."""

    recommendations: list[WebRecommendationOut]
    generated_at: str
    valid_until: str
    total_count: int


class ItemSearchResultOut(BaseModel):
    """An item found by name (O14), with the fields the web UI reads (W3)."""

    itemId: int
    id: int
    name: str
    category: str | None
    acronym: str | None
    icon: str | None


class HistoryPointOut(BaseModel):
    """One hourly bucket of an item's prices (W4)."""

    timestamp: str
    high: int
    low: int
    avgHigh: int
    avgLow: int


class WebPriceHistoryOut(BaseModel):
    """An item's hourly prices and trend (W4, O15)."""

    itemId: int
    itemName: str
    history: list[HistoryPointOut]
    trend: Literal["Rising", "Stable", "Falling"]
    change24h: float


class OpportunityFilters(BaseModel):
    """The web app's filter body of ``POST /api/v1/opportunities`` (W5)."""

    model_config = ConfigDict(extra="ignore")

    min_profit: int | None = Field(None, ge=0, le=10**13)
    max_profit: int | None = Field(None, ge=0, le=10**13)
    min_hours: float | None = Field(None, ge=0, le=168)
    max_hours: float | None = Field(None, ge=0, le=168)
    confidence: list[Literal["low", "medium", "high"]] | None = Field(None, max_length=3)
    max_capital: int | None = Field(None, ge=1, le=10**13)
    categories: list[str] | None = Field(None, max_length=50)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=100_000)
    use_beta_model: bool = False


class OpportunityOut(BaseModel):
    """One browsable flip (W5 ``items[]``)."""

    id: str = Field(description="opp-{item_id}; becomes active_trades.rec_id")
    item_id: int
    item_name: str
    icon_url: str | None
    buy_price: int
    sell_price: int
    offset_pct: float | None
    quantity: int
    capital_required: int
    expected_profit: int
    expected_profit_ev: int | None
    expected_hours: float
    confidence: str
    fill_probability: float
    volume_24h: int | None
    trend: str | None
    why_chips: list[WhyChipOut]
    category: str | None
    model_id: str | None


class OpportunitiesOut(BaseModel):
    """A page of opportunities (W5)."""

    items: list[OpportunityOut]
    total: int
    has_more: bool


class ActiveOrderIn(BaseModel):
    """An order the user placed and is waiting on (W6, and O22's check-in)."""

    model_config = ConfigDict(extra="ignore")

    item_id: int = Field(ge=1, le=2_147_483_647)
    order_type: Literal["buy", "sell"]
    user_price: int = Field(ge=1, le=2_147_483_647)
    quantity: int = Field(ge=1, le=2_147_483_647)
    time_elapsed_minutes: int = Field(ge=0, le=10_000_000)


class OrderUpdateIn(ActiveOrderIn):
    """An active order to evaluate (W6)."""

    user_id: str | None = Field(None, max_length=128)
    buy_price: int | None = Field(None, ge=1, le=2_147_483_647)
    expected_hours: int | None = Field(None, ge=1, le=10_000)
    use_beta_model: bool = False
    model_id: str | None = Field(None, max_length=64)


class AdjustPriceOut(BaseModel):
    """Relist at this price."""

    suggested_price: int
    new_fill_probability: float = Field(ge=0, le=1)
    cost_difference: int


class WaitOut(BaseModel):
    """Keep the order."""

    estimated_fill_time_minutes: int = Field(ge=0)


class AlternativeItemOut(BaseModel):
    """Another item to trade instead."""

    item_id: int
    item_name: str
    expected_profit: int
    fill_probability: float
    expected_hours: int


class AbortRetryOut(BaseModel):
    """Cancel and trade something else."""

    alternative_items: list[AlternativeItemOut]


class LiquidateOut(BaseModel):
    """Sell now at the instant price."""

    instant_price: int
    loss_amount: int


class OrderRecommendationsOut(BaseModel):
    """Every option, the chosen one first in ``action``."""

    adjust_price: AdjustPriceOut | None = None
    wait: WaitOut | None = None
    abort_retry: AbortRetryOut | None = None
    liquidate: LiquidateOut | None = None


class OrderUpdateOut(BaseModel):
    """The advice for an active order (W6)."""

    action: Literal["adjust_price", "wait", "abort_retry", "liquidate"]
    confidence: float = Field(ge=0, le=1)
    current_fill_probability: float = Field(ge=0, le=1)
    recommendations: OrderRecommendationsOut
    reasoning: str


class OutcomeIn(BaseModel):
    """A trade outcome (W7)."""

    model_config = ConfigDict(extra="ignore")

    userId: str = Sha256Hex
    itemId: int = Field(ge=1, le=2_147_483_647)
    itemName: str = Field(min_length=1, max_length=200)
    recId: str = Field(min_length=1, max_length=64)
    offsetPct: float | None = Field(None, ge=OFFSET_MIN, le=OFFSET_MAX)
    buyPrice: int = Field(ge=1, le=2_147_483_647)
    sellPrice: int = Field(ge=1, le=2_147_483_647)
    quantity: int = Field(ge=1, le=2_147_483_647)
    actualProfit: int = Field(ge=-(10**15), le=10**15)
    reportedAt: str = Field(min_length=1, max_length=40)


class SuccessOut(BaseModel):
    """An accepted write."""

    success: bool
    message: str


FeedbackType = Literal["price_too_high", "price_too_low", "volume_too_low", "filled_quickly",
                       "filled_slowly", "did_not_fill", "spread_too_wide",
                       "price_manipulation", "other"]


class FeedbackIn(BaseModel):
    """Structured feedback on a recommendation (W8)."""

    model_config = ConfigDict(extra="ignore")

    userId: str = Sha256Hex
    itemId: int = Field(ge=1, le=2_147_483_647)
    itemName: str = Field(min_length=1, max_length=200)
    feedbackType: FeedbackType
    recId: str | None = Field(None, max_length=64)
    offsetPct: float | None = Field(None, ge=OFFSET_MIN, le=OFFSET_MAX)
    side: Literal["buy", "sell"] | None = None
    notes: str | None = Field(None, max_length=500)
    recommendedPrice: int | None = Field(None, ge=1, le=2_147_483_647)
    actualPrice: int | None = Field(None, ge=1, le=2_147_483_647)
    submittedAt: str = Field(min_length=1, max_length=40)


class FeedbackOut(SuccessOut):
    """An accepted feedback, with its id."""

    feedbackId: int | None


class TradePayloadIn(BaseModel):
    """The trade inside a webhook event (W10)."""

    model_config = ConfigDict(extra="ignore")

    itemId: int = Field(ge=1, le=2_147_483_647)
    itemName: str = Field(min_length=1, max_length=200)
    buyPrice: int = Field(ge=1, le=2_147_483_647)
    sellPrice: int = Field(ge=1, le=2_147_483_647)
    offsetPct: float | None = Field(None, ge=0, le=1)
    quantity: int = Field(ge=1, le=2_147_483_647)
    profit: int | None = Field(None, ge=-(10**15), le=10**15)
    recId: str | None = Field(None, max_length=64)
    modelId: str | int | None = None
    expectedHours: int | None = Field(None, ge=0, le=10_000)
    createdAt: str | None = Field(None, max_length=40)


class TradeEventIn(BaseModel):
    """A trade lifecycle event from the web app (W10)."""

    model_config = ConfigDict(extra="ignore")

    eventType: Literal["TRADE_CREATED", "TRADE_UPDATED", "TRADE_COMPLETED", "TRADE_CANCELLED"]
    timestamp: str = Field(max_length=40)
    userId: str = Field(min_length=1, max_length=128)
    tradeId: str = Field(min_length=1, max_length=128)
    payload: TradePayloadIn
