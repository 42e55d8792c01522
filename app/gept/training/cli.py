"""`gept train`."""

from __future__ import annotations


def train() -> None:
    """Train CatBoost models."""
    raise NotImplementedError
