"""The target grid: which (window, offset) pairs a model predicts.

A target is "a buy at price×(1−offset) AND a sell at price×(1+offset) both fill within the
window". The grid is configuration, recorded with every model in the registry (so inference
reads it from the model, never from its own configuration).

Example:
    >>> grid = TargetGrid.named("default")
    >>> grid.size, grid.names[0]
    (42, 'fill_1h_1.25pct')
    >>> TargetGrid.named("production").size
    108
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gept.core.errors import InvalidInput

BLOCKS_PER_HOUR = 12  # 5-minute blocks

DEFAULT_WINDOWS: tuple[int, ...] = (1, 2, 4, 8, 12, 24, 48)
DEFAULT_OFFSETS: tuple[str, ...] = ("0.0125", "0.015", "0.0175", "0.02", "0.0225", "0.025")
# The production CatBoost grid: 18 windows x 6 offsets = 108 targets.
PRODUCTION_WINDOWS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 20, 24, 32,
                                       40, 48)


@dataclass(frozen=True)
class TargetGrid:
    """Windows (hours) × offsets (fractions, 0.0125 = 1.25 %), window-major order."""

    windows_hours: tuple[int, ...]
    offsets: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        if not self.windows_hours or not self.offsets:
            raise InvalidInput("the target grid needs at least one window and one offset",
                               field="target_grid")
        if any(w < 1 or w > 168 for w in self.windows_hours):
            raise InvalidInput("target windows must be 1..168 hours", field="windows_hours",
                               value=list(self.windows_hours))
        if any(o <= 0 or o >= Decimal("0.5") for o in self.offsets):
            raise InvalidInput("target offsets must be fractions in (0, 0.5), e.g. 0.0125",
                               field="offsets", value=[str(o) for o in self.offsets])
        if len(set(self.windows_hours)) != len(self.windows_hours) or \
                len(set(self.offsets)) != len(self.offsets):
            raise InvalidInput("target windows and offsets must be unique", field="target_grid")

    @classmethod
    def named(cls, name: str) -> TargetGrid:
        """``default`` (7 × 6 = 42 targets) or ``production`` (18 × 6 = 108)."""
        offsets = tuple(Decimal(o) for o in DEFAULT_OFFSETS)
        if name == "default":
            return cls(DEFAULT_WINDOWS, offsets)
        if name == "production":
            return cls(PRODUCTION_WINDOWS, offsets)
        raise InvalidInput(f"unknown target grid {name!r}; use 'default' or 'production'",
                           field="grid", value=name)

    @classmethod
    def parse(cls, windows: str, offsets: str) -> TargetGrid:
        """A grid from comma lists: ``parse("1,4,24", "0.0125,0.02")``."""
        try:
            w = tuple(int(x) for x in windows.split(",") if x.strip())
            o = tuple(Decimal(x.strip()) for x in offsets.split(",") if x.strip())
        except (ValueError, ArithmeticError) as exc:
            raise InvalidInput(f"bad target grid {windows!r} x {offsets!r}: {exc}",
                               field="target_grid") from exc
        return cls(w, o)

    @property
    def size(self) -> int:
        """Number of targets."""
        return len(self.windows_hours) * len(self.offsets)

    @property
    def max_window_blocks(self) -> int:
        """The longest window in 5-minute blocks (how far a label looks ahead)."""
        return max(self.windows_hours) * BLOCKS_PER_HOUR

    @property
    def names(self) -> list[str]:
        """Target names, window-major: ``fill_<h>h_<pct>pct``."""
        return [f"fill_{w}h_{_pct(o)}pct" for w in self.windows_hours for o in self.offsets]

    def pairs(self) -> list[tuple[int, Decimal]]:
        """(window hours, offset) per target, in target order."""
        return [(w, o) for w in self.windows_hours for o in self.offsets]

    def offsets_float(self) -> list[float]:
        """The offsets as floats (for arithmetic on prices)."""
        return [float(o) for o in self.offsets]


def _pct(offset: Decimal) -> str:
    return format((offset * 100).normalize(), "f")
