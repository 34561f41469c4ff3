"""Delayed labels: predictions kept by request id until their labels arrive, and a rolling accuracy."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any


class PendingPredictions:
    """Predictions awaiting labels, bounded both in entries (oldest evicted first) and in age."""

    def __init__(
        self, max_entries: int = 100_000, ttl_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, tuple[Any, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, request_id: str, predictions: Sequence[Any]) -> None:
        """Remember a request's predictions, evicting the oldest entries beyond the bounds."""
        now = self._clock()
        self._entries[request_id] = (now, tuple(predictions))
        self._entries.move_to_end(request_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        self._expire(now)

    def pop(self, request_id: str) -> tuple[Any, ...] | None:
        """The request's predictions, once: a label is matched at most one time."""
        self._expire(self._clock())
        entry = self._entries.pop(request_id, None)
        return None if entry is None else entry[1]

    def _expire(self, now: float) -> None:
        # Entries are in insertion order, so expired ones are all at the front.
        while self._entries:
            stamp, _ = next(iter(self._entries.values()))
            if now - stamp <= self.ttl_seconds:
                break
            self._entries.popitem(last=False)


class RollingAccuracy:
    """Accuracy over the last `window` labelled predictions; NaN until `min_labels` have arrived."""

    def __init__(self, window: int = 500, min_labels: int = 20) -> None:
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._correct = 0
        self.min_labels = min_labels

    def add(self, outcomes: Sequence[bool]) -> None:
        """Record whether each labelled prediction was right."""
        for outcome in outcomes:
            if len(self._outcomes) == self._outcomes.maxlen:
                self._correct -= self._outcomes[0]
            self._outcomes.append(outcome)
            self._correct += outcome

    @property
    def labels(self) -> int:
        """Labelled predictions inside the window."""
        return len(self._outcomes)

    @property
    def value(self) -> float:
        """The rolling accuracy, NaN while too few labels are in the window to trust it."""
        if len(self._outcomes) < max(1, self.min_labels):
            return math.nan
        return self._correct / len(self._outcomes)


def matches(predictions: Sequence[Any], labels: Sequence[Any]) -> list[bool]:
    """Pairwise prediction == label, comparing numbers as numbers (1 == 1.0) and the rest as text."""
    return [_same(prediction, label) for prediction, label in zip(predictions, labels, strict=False)]


def _same(prediction: Any, label: Any) -> bool:
    if isinstance(prediction, (int, float)) and isinstance(label, (int, float)):
        return float(prediction) == float(label)
    return str(prediction) == str(label)
