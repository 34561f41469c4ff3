"""How pushes and pulls report progress, without knowing who draws it."""

from __future__ import annotations

from collections.abc import Callable

# Called with (what, bytes done, bytes in all) as hashing and transfers advance.
Progress = Callable[[str, int, int], None]


def no_progress(what: str, done: int, total: int) -> None:
    """A progress sink for callers that show none."""
