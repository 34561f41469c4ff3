"""The test tree itself: module names must be unique, since pytest's default import mode keys on them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("*.py") if path.name not in ("conftest.py", "__init__.py"))
    duplicates = sorted(name for name, count in names.items() if count > 1)
    assert not duplicates, f"rename these so each is unique across tests/: {duplicates}"
