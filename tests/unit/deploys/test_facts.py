"""Each fact's pure parser, one data file per case (tests/unit/deploys/facts/*.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from deploys.facts import gept as facts  # noqa: E402

CASES = sorted((Path(__file__).parent / "facts").glob("*.json"))


def _normalise(value: Any) -> Any:
    """JSON has string keys only: compare dicts by their string-keyed form."""
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_fact_parses_recorded_output(case: Path) -> None:
    spec = json.loads(case.read_text())
    fact = getattr(facts, spec["fact"])()
    assert _normalise(fact.process(spec["output"])) == spec["expected"]
