"""The shapes GePT's clients read (web-contract.md), built from our recommendations.

The web app and the Discord bot read camelCase recommendation objects (W1, W2), snake_case
opportunities (W5), and a few enums; this module is the one place that maps our candidates
onto those fields, so the routes stay thin and every mapping is tested once.

Rules that are ours (documented here, tested in tests/unit/engine/test_contract.py):

* **rec id** ``rec_{item_id}_{YYYYMMDDHH}``: the item and the UTC hour of its batch.
* **fillConfidence**: Strong at fill probability ≥ 0.5, Good at ≥ 0.25, else Fair.
* **trend**: the mean mid price of the last 2 hours against the mean of the 24 hours before
  the batch: Rising above +1 %, Falling below -1 %, else Stable.
* **category**: the first rule of :data:`CATEGORY_RULES` whose word appears in the item's
  name (lower case), else ``Members`` or ``Free-to-play`` from the item's members flag.
* **icon_url**: the OSRS Wiki image of the /mapping ``icon`` file name.

Example:
    >>> from datetime import UTC, datetime
    >>> contract_rec_id(4151, datetime(2026, 2, 11, 17, 35, tzinfo=UTC))
    'rec_4151_2026021117'
    >>> category_of("Shark", members=True), category_of("Air rune", members=False)
    ('Food', 'Runes')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from gept.engine.recommend import Candidate, Recommendation

Trend = Literal["Rising", "Stable", "Falling"]

CONTRACT_REC_ID = re.compile(r"^rec_(\d{1,9})_(\d{10})$")
CONTRACT_REC_ID_PATTERN = CONTRACT_REC_ID.pattern
WIKI_IMAGES = "https://oldschool.runescape.wiki/images/"

CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Runes", (" rune$",)),
    ("Potions", ("potion", "brew", "(4)", "(3)", "(2)", "(1)", "elixir")),
    ("Food", ("shark", "lobster", "karambwan", "anglerfish", "manta ray", "swordfish",
              "monkfish", "tuna", "pie", "pizza", "cake", "stew", "trout", "salmon")),
    ("Herbs", ("grimy", "herb", "ranarr", "snapdragon", "torstol", "kwuarm", "cadantine",
               "dwarf weed", "lantadyme", "avantoe", "toadflax", "irit", "guam", "marrentill",
               "tarromin", "harralander")),
    ("Seeds", ("seed",)),
    ("Logs", ("logs",)),
    ("Ores & bars", (" ore", " bar", "coal")),
    ("Bones", ("bones",)),
    ("Gems", ("sapphire", "emerald", "ruby", "diamond", "dragonstone", "onyx", "zenyte",
              "opal", "jade", "topaz")),
    ("Ammunition", ("arrow", "bolts", "dart", "javelin", "knife", "chinchompa", "cannonball")),
    ("Weapons", ("sword", "scimitar", "whip", "dagger", "mace", "axe", "bow", "staff", "wand",
                 "spear", "hasta", "halberd", "maul", "claws", "blowpipe", "crossbow",
                 "godsword", "rapier", "bludgeon", "trident")),
    ("Armour", ("helm", "platebody", "platelegs", "plateskirt", "chainbody", "shield",
                "boots", "gloves", "body", "chaps", "coif", "vambraces", "cape", "hood",
                "robe", "legs", "top", "ring", "amulet", "necklace", "bracelet")),
    ("Raw materials", ("hide", "leather", "flax", "bowstring", "essence", "sand", "clay",
                       "feather", "scale", "shard")),
)
"""Category by the first matching word in the item's name (checked in this order); a word
ending in ``$`` must end the name ("Nature rune" is a rune, "Rune platebody" is not)."""


def category_of(name: str, *, members: bool | None) -> str:
    """The item's category by :data:`CATEGORY_RULES`, else by its members flag."""
    lowered = f" {name.lower()}"
    for category, words in CATEGORY_RULES:
        if any(lowered.endswith(w[:-1]) if w.endswith("$") else w in lowered for w in words):
            return category
    return "Members" if members else "Free-to-play"


def icon_url(icon: str | None) -> str | None:
    """The OSRS Wiki image URL of a /mapping ``icon`` file name (spaces become ``_``).

    Example:
        >>> icon_url("Abyssal whip.png")
        'https://oldschool.runescape.wiki/images/Abyssal_whip.png'
    """
    if not icon:
        return None
    return WIKI_IMAGES + quote(icon.replace(" ", "_"))


def trend_of(recent_mid: float | None, day_mid: float | None) -> Trend:
    """Rising / Falling beyond ±1 % of the 24-hour mean mid price, else Stable."""
    if not recent_mid or not day_mid:
        return "Stable"
    change = (recent_mid - day_mid) / day_mid
    if change > 0.01:
        return "Rising"
    if change < -0.01:
        return "Falling"
    return "Stable"


def fill_confidence(p: float) -> Literal["Strong", "Good", "Fair"]:
    """The bot's and web app's label of a fill probability."""
    if p >= 0.5:
        return "Strong"
    if p >= 0.25:
        return "Good"
    return "Fair"


def contract_rec_id(item_id: int, batch_time: datetime) -> str:
    """``rec_{item_id}_{YYYYMMDDHH}`` (UTC hour of the batch)."""
    return f"rec_{item_id}_{batch_time.astimezone(UTC):%Y%m%d%H}"


def parse_contract_rec_id(value: str) -> tuple[int, datetime] | None:
    """``(item_id, hour)`` of a contract rec id, or None if malformed."""
    m = CONTRACT_REC_ID.match(value)
    if m is None:
        return None
    try:
        hour = datetime.strptime(m.group(2), "%Y%m%d%H").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(m.group(1)), hour


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """What the clients see of an item besides its prediction: icon, category, trend."""

    icon_url: str | None
    category: str
    trend: Trend


UNKNOWN_ITEM = ItemInfo(None, "Other", "Stable")


def why_chips(c: Candidate, info: ItemInfo) -> list[dict[str, str]]:
    """Short reasons a flip is shown: fill odds, speed, volume, margin, trend."""
    chips: list[dict[str, str]] = []
    if c.fill_probability >= 0.5:
        chips.append({"icon": "🎯", "label": "Likely to fill", "type": "positive"})
    elif c.fill_probability < 0.15:
        chips.append({"icon": "⏳", "label": "Unlikely to fill", "type": "negative"})
    if c.hour_offset <= 4:
        chips.append({"icon": "⚡", "label": "Quick flip", "type": "positive"})
    elif c.hour_offset >= 12:
        chips.append({"icon": "🌙", "label": "Overnight", "type": "neutral"})
    if c.volume_24h is not None and c.volume_24h >= 100_000:
        chips.append({"icon": "📊", "label": "High volume", "type": "positive"})
    elif c.volume_24h is not None and c.volume_24h < 1_000:
        chips.append({"icon": "🐢", "label": "Thin market", "type": "negative"})
    if c.buy_price and c.unit_profit / c.buy_price >= 0.02:
        chips.append({"icon": "💰", "label": "Wide margin", "type": "positive"})
    if info.trend == "Rising":
        chips.append({"icon": "📈", "label": "Price rising", "type": "positive"})
    elif info.trend == "Falling":
        chips.append({"icon": "📉", "label": "Price falling", "type": "negative"})
    return chips


def reason(c: Candidate, info: ItemInfo) -> str:
    """One sentence the web app shows as the recommendation's reason."""
    return (f"{round(c.fill_probability * 100)}% chance to fill within {c.hour_offset} h at a "
            f"{c.offset_pct * 100:.2f}% offset; price {info.trend.lower()}")


def web_static(c: Candidate, info: ItemInfo,
               model_status: str | None = "ACTIVE") -> dict[str, object]:
    """The part of a W1/W2 object that does not depend on the request (built once per batch
    and candidate: the reason and the chips cost more than the sizing).
    """
    return {
        "itemId": c.item_id, "item": c.item_name, "buyPrice": c.buy_price,
        "sellPrice": c.sell_price, "offsetPct": c.offset_pct, "confidence": c.confidence,
        "fillProbability": c.fill_probability,
        "fillConfidence": fill_confidence(c.fill_probability), "trend": info.trend,
        "expectedHours": c.hour_offset, "volume24h": c.volume_24h, "priceHistory": None,
        "modelId": c.model_id, "modelStatus": model_status, "reason": reason(c, info),
        "isRecommended": True, "isMultiLimitStrategy": False, "whyChips": why_chips(c, info),
    }


def web_recommendation(rec: Recommendation, info: ItemInfo, *, rec_id: str,
                       static: dict[str, object] | None = None) -> dict[str, object]:
    """The camelCase object of W1/W2 (the original's RecommendationResponse)."""
    c = rec.candidate
    profit = rec.profit_if_filled
    return {"id": rec_id, **(static if static is not None else web_static(c, info)),
            "quantity": rec.quantity, "capitalRequired": rec.capital_required,
            "expectedProfit": profit, "expectedProfitEV": round(profit * c.fill_probability)}


def opportunity(c: Candidate, quantity: int, info: ItemInfo) -> dict[str, object]:
    """One item of W5's ``items[]`` (the original's OpportunityResponse)."""
    rec_profit = (c.sell_price - c.unit_tax - c.buy_price) * quantity
    return {
        "id": f"opp-{c.item_id}", "item_id": c.item_id, "item_name": c.item_name,
        "icon_url": info.icon_url, "buy_price": c.buy_price, "sell_price": c.sell_price,
        "offset_pct": c.offset_pct, "quantity": quantity,
        "capital_required": quantity * c.buy_price, "expected_profit": rec_profit,
        "expected_profit_ev": round(rec_profit * c.fill_probability),
        "expected_hours": float(c.hour_offset), "confidence": c.confidence,
        "fill_probability": c.fill_probability, "volume_24h": c.volume_24h,
        "trend": info.trend, "why_chips": why_chips(c, info), "category": info.category,
        "model_id": None if c.model_id is None else str(c.model_id),
    }
