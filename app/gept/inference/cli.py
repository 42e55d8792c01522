"""`gept infer`."""

from __future__ import annotations


def infer() -> None:
    """Run inference and write a predictions batch."""
    raise NotImplementedError
