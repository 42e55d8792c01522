"""Argument checks of an inference cycle that need no database."""

from __future__ import annotations

import pytest

from gept.core.errors import InvalidInput
from gept.inference.runner import run_inference


def test_unknown_role_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="primary or fallback"):
        run_inference("secondary")


@pytest.mark.parametrize("days", [1, 2])
def test_retention_shorter_than_the_longest_window_is_refused(days: int) -> None:
    with pytest.raises(InvalidInput, match=">= 3"):
        run_inference("primary", retention_days=days)
