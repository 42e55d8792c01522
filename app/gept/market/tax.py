"""The Grand Exchange tax: the one implementation inference and the engine share.

Rules (effective 2025-05-29): 2 % of the sell price per item, rounded down; nothing below
50 gp; at most 5,000,000 gp per item.

Example:
    >>> [tax_per_item(p) for p in (49, 50, 100, 149, 150, 300_000_000)]
    [0, 1, 2, 2, 3, 5000000]
    >>> profit_after_tax(buy_price=100, sell_price=150, quantity=10)
    470
"""

from __future__ import annotations

TAX_RATE_PERCENT = 2
TAX_FREE_BELOW = 50
TAX_CAP_PER_ITEM = 5_000_000


def tax_per_item(sell_price: int) -> int:
    """The tax charged on selling one item at ``sell_price`` gp."""
    if sell_price < TAX_FREE_BELOW:
        return 0
    # Integer arithmetic: floor(price * 0.02) without float rounding at 2**31.
    return min(sell_price * TAX_RATE_PERCENT // 100, TAX_CAP_PER_ITEM)


def tax_total(sell_price: int, quantity: int) -> int:
    """The tax on selling ``quantity`` items at ``sell_price`` gp each."""
    return tax_per_item(sell_price) * quantity


def profit_after_tax(buy_price: int, sell_price: int, quantity: int) -> int:
    """Profit of buying and selling ``quantity`` items, after tax."""
    return quantity * (sell_price - buy_price) - tax_total(sell_price, quantity)


def net_return(buy_price: float, sell_price: float) -> float:
    """Profit per gp invested for one item after tax (0.0 when buy_price is 0)."""
    if buy_price <= 0:
        return 0.0
    return (sell_price - tax_per_item(int(sell_price)) - buy_price) / buy_price
