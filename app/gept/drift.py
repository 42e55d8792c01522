"""`gept drift`: what would the deploys change right now."""

from __future__ import annotations


def drift() -> None:
    """Report every host and operation that would change."""
    raise NotImplementedError
