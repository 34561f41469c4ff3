"""Delayed labels: predictions kept by request id until their labels arrive, and a rolling accuracy."""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from shipway.sidecar.hygiene import header_safe_id

# Predictions whose text is longer than this are kept as a digest: a label still matches
# the same text, and one entry's memory no longer grows with what the model answered.
MAX_KEPT_TEXT = 64
_DIGEST_BYTES = 16
# What one pending entry costs beyond its id and values: the dict slot, its tuples and timestamp.
ENTRY_OVERHEAD_BYTES = 200


class PendingPredictions:
    """Predictions awaiting labels, bounded in predictions held, in bytes and in age (oldest evicted first).

    Ids longer than a header can carry are kept as a digest (see `header_safe_id`), texts longer
    than `MAX_KEPT_TEXT` as a 16-byte digest, so each entry's size has a ceiling, and `max_bytes`
    bounds them all together.
    """

    def __init__(
        self, max_predictions: int = 100_000, ttl_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if max_predictions < 0 or max_bytes < 0:
            raise ValueError(f"max_predictions and max_bytes must be 0 (keep none) or positive, "
                             f"got {max_predictions} and {max_bytes}")
        self.max_predictions = max_predictions
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, tuple[Any, ...], int]] = OrderedDict()
        self._held = 0
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def predictions(self) -> int:
        """Predictions held across all pending requests."""
        return self._held

    @property
    def bytes(self) -> int:
        """Estimated bytes held: ids, values and per-entry overhead."""
        return self._bytes

    def put(self, request_id: str, predictions: Sequence[Any]) -> None:
        """Remember a request's predictions, evicting the oldest requests beyond the bounds."""
        if self.max_predictions == 0 or self.max_bytes == 0:
            return
        now = self._clock()
        key = header_safe_id(request_id)
        kept = tuple(compact(value) for value in predictions[: self.max_predictions])
        size = ENTRY_OVERHEAD_BYTES + sys.getsizeof(key) + sum(sys.getsizeof(value) for value in kept)
        self._remove(key)
        if size > self.max_bytes:
            return
        self._entries[key] = (now, kept, size)
        self._held += len(kept)
        self._bytes += size
        while self._held > self.max_predictions or self._bytes > self.max_bytes:
            _, (_, evicted, evicted_size) = self._entries.popitem(last=False)
            self._held -= len(evicted)
            self._bytes -= evicted_size
        self._expire(now)

    def pop(self, request_id: str) -> tuple[Any, ...] | None:
        """The request's predictions, once: a label is matched at most one time."""
        self._expire(self._clock())
        return self._remove(header_safe_id(request_id))

    def _remove(self, key: str) -> tuple[Any, ...] | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._held -= len(entry[1])
        self._bytes -= entry[2]
        return entry[1]

    def _expire(self, now: float) -> None:
        # Entries are in insertion order, so expired ones are all at the front.
        while self._entries:
            stamp, predictions, size = next(iter(self._entries.values()))
            if now - stamp <= self.ttl_seconds:
                break
            self._entries.popitem(last=False)
            self._held -= len(predictions)
            self._bytes -= size


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


def compact(value: Any) -> Any:
    """A prediction as kept for matching: a number or short text as it is, anything longer as a digest."""
    if isinstance(value, (int, float, bytes)):
        return value
    text = value if isinstance(value, str) else str(value)
    if len(text) <= MAX_KEPT_TEXT:
        return value
    # bytes never come out of JSON, so a digest cannot be mistaken for a prediction's own value.
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES).digest()


def matches(predictions: Sequence[Any], labels: Sequence[Any]) -> list[bool]:
    """Pairwise prediction == label, comparing numbers as numbers (1 == 1.0) and the rest as text."""
    return [_same(prediction, label) for prediction, label in zip(predictions, labels, strict=False)]


def _same(prediction: Any, label: Any) -> bool:
    if isinstance(prediction, (int, float)) and isinstance(label, (int, float)):
        return float(prediction) == float(label)
    prediction, label = compact(prediction), compact(label)
    if isinstance(prediction, bytes) or isinstance(label, bytes):
        return prediction == label
    return str(prediction) == str(label)
