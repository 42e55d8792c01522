"""One ``@deploy`` per concern; the entry points (ampere.py, hydra.py) compose them."""

from pathlib import Path

TEMPLATES = str(Path(__file__).resolve().parent.parent / "templates")
