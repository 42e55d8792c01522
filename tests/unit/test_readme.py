"""The README restates a few lists; each must say what the code says."""

from __future__ import annotations

import re
from pathlib import Path

from gept.guards.zones import ZONES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_danger_zones_are_the_code_s() -> None:
    bullet = README[README.index("- **Danger zones**"):].split("Refused", 1)[0]
    assert re.findall(r"`([a-z-]+)`", bullet) == list(ZONES)
