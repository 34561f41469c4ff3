"""Pending predictions stay bounded; rolling accuracy is exact over its window."""

from __future__ import annotations

import math

from shipway.sidecar.feedback import PendingPredictions, RollingAccuracy, matches


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pending_map_evicts_the_oldest_beyond_its_size() -> None:
    pending = PendingPredictions(max_entries=3)
    for index in range(5):
        pending.put(f"r{index}", [index])
    assert len(pending) == 3
    assert pending.pop("r0") is None
    assert pending.pop("r4") == (4,)
    assert pending.pop("r4") is None


def test_pending_map_expires_entries_past_their_ttl() -> None:
    clock = Clock()
    pending = PendingPredictions(max_entries=100, ttl_seconds=10, clock=clock)
    pending.put("old", [1])
    clock.now = 6
    pending.put("new", [2])
    clock.now = 12
    assert pending.pop("old") is None
    assert pending.pop("new") == (2,)


def test_rolling_accuracy_needs_enough_labels_then_tracks_the_window() -> None:
    accuracy = RollingAccuracy(window=4, min_labels=3)
    accuracy.add([True, False])
    assert math.isnan(accuracy.value)
    accuracy.add([True])
    assert accuracy.value == 2 / 3
    accuracy.add([False, False, False])
    assert accuracy.labels == 4
    assert accuracy.value == 1 / 4


def test_labels_match_numbers_as_numbers_and_the_rest_as_text() -> None:
    assert matches([1, 0, "cat", 2.0], [1.0, 1, "cat", "2.0"]) == [True, False, True, True]
