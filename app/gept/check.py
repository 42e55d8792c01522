"""`gept check`: run the testinfra checks against an inventory."""

from __future__ import annotations


def check() -> None:
    """Prove hosts are in the state the deploys promise."""
    raise NotImplementedError
