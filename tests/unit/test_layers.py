"""Layers point inward: what may import what, read from the source (no import runs)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative ones are not used here)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in files:
        bad = sorted(n for n in imports(path)
                     if any(n == f or n.startswith(f + ".") for f in forbidden))
        if bad:
            out[str(path.relative_to(REPO))] = bad
    return out


def py(*parts: str) -> list[Path]:
    return sorted((REPO.joinpath(*parts)).rglob("*.py"))


RULES = [
    # The production deploys stand on their own: nothing of the lab, the tests or the demo.
    ("deploys", py("deploys"), ("gept.lab", "gept.testing", "gept.demo")),
    # Test support is for tests and benchmarks; the runtime never imports it.
    ("runtime", [p for p in py("app", "gept") if "testing" not in p.parts],
     ("gept.testing",)),
    # The demo is an entry point (make demo), not a library.
    ("tests and benches", py("tests") + py("bench"), ("gept.demo",)),
]


@pytest.mark.parametrize(("what", "files", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_nothing_imports_across_its_layer(what: str, files: list[Path],
                                          forbidden: tuple[str, ...]) -> None:
    assert files, what
    assert offenders(files, forbidden) == {}
