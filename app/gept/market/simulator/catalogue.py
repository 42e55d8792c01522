"""The simulator's item catalogue: what ``/mapping`` lists, shaped like the real one.

Measured on real ``/mapping`` dumps (see ``docs/operations-reference.md``, "The OSRS Wiki
prices API"): about 4,300 items sorted by name; names unique, a couple non-ASCII; ``examine``
and ``icon`` always strings, icons named after the item with spaces (``"3rd age
amulet.png"``, stackables ``"Adamant arrow 5.png"``); ``value`` is the store value (at most
16,000,000, 0 for about 1 %), not the Grand Exchange price; ``highalch``/``lowalch`` are
``floor(0.6 / 0.4 x value)`` for most items but not all; ``limit`` absent for about 8 % and 0
for a couple; both alch values absent for about 0.5 %.

Example:
    >>> import numpy as np
    >>> rows = catalogue(np.random.default_rng(1), [2, 6, 9], [1.0, 3.0, 6.0])
    >>> [r.name for r in rows] == sorted(r.name for r in rows)
    True
    >>> all(isinstance(r.examine, str) and r.icon.endswith(".png") for r in rows)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gept.market.models import ItemMapping

DEFAULT_ITEMS = 4300
"""Catalogue size by default: real ``/mapping`` dumps hold 3,766 to 4,275 items."""
MAX_VALUE = 16_000_000
"""The largest store value in the real catalogue."""

_ADJ = ("Rune", "Adamant", "Mithril", "Dragon", "Bronze", "Iron", "Steel", "Black", "White",
        "Granite", "Crystal", "Ancient", "Blessed", "Gilded", "Toxic", "Infernal", "Twisted",
        "Arcane", "Saradomin", "Zamorak", "Guthix", "Armadyl", "Bandos", "Volcanic", "Frozen")
_NOUN = ("platebody", "scimitar", "bar", "ore", "logs", "rune", "arrow", "bolts", "shield",
         "helm", "boots", "gloves", "staff", "potion(4)", "seed", "herb", "fish", "pie",
         "amulet", "ring", "bones", "dart", "javelin", "cape", "crossbow")
_VARIANT = ("(p)", "(p+)", "(p++)", "(u)", "(e)", "(or)", "(g)", "(t)", "(i)", "(broken)",
            "(uncharged)", "(3)", "(2)", "(1)", "(h1)", "(h2)", "(h3)", "(kp)", "(nz)", "(lit)")
_STACKABLE = frozenset({"arrow", "bolts", "rune", "dart", "javelin", "seed"})
_NON_ASCII = ("Chichilihui rosé", "Imperial rosé")
_LIMITS = (8, 40, 70, 100, 125, 500, 1000, 2000, 5000, 6000, 10000, 11000, 13000, 18000,
           25000, 30000)


def _names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` unique names: "Adj noun", then "Adj noun (variant)", then with the index."""
    seen: set[str] = set()
    names: list[str] = []
    for k in range(n):
        base = f"{_ADJ[int(rng.integers(len(_ADJ)))]} {_NOUN[int(rng.integers(len(_NOUN)))]}"
        name = base
        for _ in range(4):
            if name not in seen:
                break
            name = f"{base} {_VARIANT[int(rng.integers(len(_VARIANT)))]}"
        if name in seen:
            name = f"{base} #{k}"
        seen.add(name)
        names.append(name)
    if n >= 100:  # the real catalogue has two non-ASCII names
        for k, special in zip(rng.choice(n, size=2, replace=False), _NON_ASCII, strict=True):
            names[int(k)] = special
    return names


def _examine(name: str) -> str:
    article = "An" if name[0].lower() in "aeiou" else "A"
    return f"{article} {name.lower()}, as sold on the Grand Exchange."


def _alch(rng: np.random.Generator, value: int) -> tuple[int, int]:
    """(lowalch, highalch): the 0.4/0.6 rule for about 86 % of items, something else else."""
    if rng.random() < 0.86:
        return value * 2 // 5, value * 3 // 5
    high = int(value * rng.uniform(0.3, 0.9))
    return int(high * rng.uniform(0.5, 0.8)), high


def catalogue(rng: np.random.Generator, item_ids: Sequence[int], log10_price: Sequence[float]
              ) -> list[ItemMapping]:
    """One ``ItemMapping`` per id (``log10_price``: the item's typical GE price), by name."""
    n = len(item_ids)
    names = _names(rng, n)
    rows: list[ItemMapping] = []
    for k in range(n):
        item_id, name = int(item_ids[k]), names[k]
        price = 10.0 ** float(log10_price[k])
        draw = rng.random()
        value = (0 if draw < 0.012 else
                 int(min(MAX_VALUE, max(1, round(price * rng.uniform(0.02, 0.9))))))
        missing = rng.random()
        has_alch, has_limit = missing >= 0.005, missing >= 0.0042 and rng.random() >= 0.074
        lowalch, highalch = _alch(rng, value) if has_alch else (None, None)
        limit = ((0 if rng.random() < 0.0005 else int(rng.choice(_LIMITS)))
                 if has_limit else None)
        noun = name.split(" ")[1] if " " in name else ""
        icon = f"{name} 5.png" if noun in _STACKABLE and rng.random() < 0.5 else f"{name}.png"
        rows.append(ItemMapping(
            item_id=item_id, name=name, examine=_examine(name),
            members=bool(rng.random() < 0.6), value=value, lowalch=lowalch,
            highalch=highalch, limit=limit, icon=icon))
    rows.sort(key=lambda r: r.name)
    return rows
