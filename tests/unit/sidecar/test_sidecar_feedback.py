"""Pending predictions stay bounded; rolling accuracy is exact over its window."""

from __future__ import annotations

import gc
import math

import psutil

from shipway.sidecar.feedback import PendingPredictions, RollingAccuracy, matches


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pending_map_evicts_the_oldest_beyond_its_size() -> None:
    pending = PendingPredictions(max_predictions=3)
    for index in range(5):
        pending.put(f"r{index}", [index])
    assert len(pending) == 3
    assert pending.pop("r0") is None
    assert pending.pop("r4") == (4,)
    assert pending.pop("r4") is None


def test_the_bound_counts_predictions_not_requests() -> None:
    pending = PendingPredictions(max_predictions=10)
    for index in range(4):
        pending.put(f"r{index}", [index] * 4)
    # Four requests of four predictions overflow ten: the two oldest requests go.
    assert (len(pending), pending.predictions) == (2, 8)
    assert pending.pop("r1") is None and pending.pop("r3") == (3, 3, 3, 3)
    assert pending.predictions == 4
    pending.put("r2", [9])
    assert pending.predictions == 1 and pending.pop("r2") == (9,)


def test_long_text_predictions_are_kept_as_digests_and_still_match() -> None:
    answer = "a long generated answer " * 20
    pending = PendingPredictions(max_predictions=10)
    pending.put("r", [answer, "short", 3])
    kept = pending.pop("r")
    assert kept is not None and kept[1:] == ("short", 3) and len(kept[0]) == 16
    assert matches(kept, [answer, "short", 3.0]) == [True, True, True]
    assert matches(kept, [answer + ".", "other", 4]) == [False, False, False]


def test_pending_memory_stays_bounded_whatever_the_model_answers() -> None:
    """Long answers (an LLM's text) for many requests stay within a few MB at the default bound."""
    process = psutil.Process()
    pending = PendingPredictions()
    gc.collect()
    baseline = process.memory_info().rss
    # 600 requests of 256 one-kilobyte answers: 150 MB if kept as sent.
    for index in range(600):
        pending.put(f"request-{index:06d}", [f"{index}-{position}-" + "x" * 1000 for position in range(256)])
    gc.collect()
    grown = process.memory_info().rss - baseline
    assert pending.predictions <= 100_000
    assert grown < 32 * 1024 * 1024, f"RSS grew {grown / 1e6:.1f} MB"


def test_pending_map_expires_entries_past_their_ttl() -> None:
    clock = Clock()
    pending = PendingPredictions(max_predictions=100, ttl_seconds=10, clock=clock)
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


def test_a_zero_limit_keeps_no_predictions() -> None:
    pending = PendingPredictions(max_predictions=0)
    pending.put("a", [1, 2, 3])
    assert len(pending) == 0 and pending.predictions == 0
    assert pending.pop("a") is None
