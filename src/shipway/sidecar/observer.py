"""The sidecar's bookkeeping for each exchange, kept apart from the HTTP plumbing.

Every state it holds is bounded: drift windows are bin counts, the feature
buffer is flushed every `flush_rows` rows, pending predictions are capped in
predictions held and in bytes (long ids and texts kept as digests), in age and in
values per request,
and the accuracy window is a fixed deque.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipway.drift.profile import ReferenceProfile
from shipway.drift.window import DriftWindow
from shipway.sidecar import payload
from shipway.sidecar.feedback import PendingPredictions, RollingAccuracy, matches
from shipway.sidecar.metrics import SidecarMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObserverSettings:
    """Bounds and window sizes; the defaults suit one replica at tens to thousands of requests per second."""

    window_rows: int = 2000
    window_slices: int = 4
    flush_rows: int = 256
    # Predictions (not requests) awaiting labels; compacted, 100 000 of them take about 35 MB at most.
    pending_limit: int = 100_000
    # Bytes those predictions and their request ids may take, estimated per entry.
    pending_bytes: int = 32 * 1024 * 1024
    pending_ttl_seconds: float = 3600.0
    predictions_per_request: int = 256
    accuracy_window: int = 500
    min_labels: int = 20
    # Larger bodies (images, long prompts) stream through without being looked inside.
    max_parse_bytes: int = 4 * 1024 * 1024


class Observer:
    """Counts, drift windows and delayed-label accuracy for one model version."""

    def __init__(
        self,
        metrics: SidecarMetrics,
        profile: ReferenceProfile | None,
        settings: ObserverSettings | None = None,
        features: Sequence[str] = (),
    ) -> None:
        """Watch `features` of the profile for drift, or every profiled feature when none are named."""
        if features and profile is None:
            raise ValueError("features to watch need a reference profile")
        self.metrics = metrics
        self.settings = settings or ObserverSettings()
        self.profile = profile
        # Requests carry every profiled feature in the profile's order, watched or not: parse by the whole profile.
        self.feature_names = profile.feature_names if profile else ()
        watched = profile.select(features) if profile is not None and features else profile
        self._watched = frozenset(watched.feature_names) if watched else frozenset()
        self.window = (
            DriftWindow(watched, self.settings.window_rows, self.settings.window_slices) if watched else None
        )
        self.pending = PendingPredictions(self.settings.pending_limit, self.settings.pending_ttl_seconds,
                                          max_bytes=self.settings.pending_bytes)
        self.accuracy = RollingAccuracy(self.settings.accuracy_window, self.settings.min_labels)
        self._columns: dict[str, list[Any]] = {}
        self._rows = 0
        self._predictions: list[Any] = []

    def parse(self, body: bytes, encoding: str | None = None) -> Any:
        """The request's JSON document, or None when it is too large, not JSON, or in an unknown encoding."""
        if len(body) > self.settings.max_parse_bytes:
            return None
        if encoding is not None and encoding.strip().lower() not in ("", "identity"):
            inflated = payload.inflate(body, encoding, self.settings.max_parse_bytes)
            return None if inflated is None else payload.load_json(inflated)
        return payload.load_json(body)

    def observe(self, request_id: str | None, document: Any, status: int, response: Any) -> None:
        """Features and predictions of one finished inference exchange (its count and latency are the proxy's).

        `document` and `response` are the parsed request and response, None when they were not
        kept (too large, not JSON): such a request counts as unparsed.
        """
        metrics = self.metrics
        found = payload.features(document, self.feature_names) if self.window is not None else None
        if found is None:
            if document is None or self.window is not None:
                metrics.unparsed.inc()
        else:
            self._buffer(found)
        if status >= 400 or response is None:
            return
        predicted = payload.predictions(response)
        if not predicted:
            return
        if self.window is not None and self.profile is not None and self.profile.prediction is not None:
            self._predictions.extend(predicted)
            if len(self._predictions) >= self.settings.flush_rows:
                self._flush()
        if request_id is not None:
            self.pending.put(request_id, predicted[: self.settings.predictions_per_request])

    def feedback(self, request_id: str, labels: Sequence[Any]) -> int:
        """Match delayed labels to a request's predictions; returns how many were matched."""
        predicted = self.pending.pop(request_id)
        if predicted is None:
            self.metrics.labels_unmatched.inc()
            return 0
        outcomes = matches(predicted, labels)
        self.accuracy.add(outcomes)
        self.metrics.labels_matched.inc(len(outcomes))
        self.metrics.online_accuracy.set(self.accuracy.value)
        return len(outcomes)

    def refresh(self) -> None:
        """Flush buffered rows and publish the drift gauges; called before every scrape."""
        self._flush()
        self.metrics.online_accuracy.set(self.accuracy.value)
        if self.window is None:
            return
        statistics = self.window.statistics()
        metrics = self.metrics
        metrics.window_rows.set(statistics.rows)
        model, version = metrics.model, metrics.version
        for feature in statistics.features:
            labels = (model, version, feature.name)
            metrics.feature_psi.labels(*labels).set(feature.psi)
            metrics.feature_js.labels(*labels).set(feature.js)
            metrics.feature_rows.labels(*labels).set(feature.rows)
            metrics.feature_missing_share.labels(*labels).set(feature.missing_share)
            if feature.kind == "numeric":
                metrics.feature_ks.labels(*labels).set(feature.ks)
            else:
                metrics.feature_chi2_pvalue.labels(*labels).set(feature.chi2_pvalue)
        if statistics.prediction is not None:
            metrics.prediction_psi.set(statistics.prediction.psi)

    def _buffer(self, found: payload.Features) -> None:
        for name, column in found.columns.items():
            if name in self._watched:
                self._columns.setdefault(name, []).extend(column)
        self._rows += found.rows
        if self._rows >= self.settings.flush_rows:
            self._flush()

    def _flush(self) -> None:
        if self.window is None:
            return
        if self._rows:
            columns, rows = self._columns, self._rows
            self._columns, self._rows = {}, 0
            try:
                self.window.add_columns(columns, rows)
            except (TypeError, ValueError) as error:
                # A batch that cannot be binned is dropped: drift is best effort, serving is not.
                log.warning("dropped %d rows from the drift window: %s", rows, error)
        if self._predictions:
            predicted, self._predictions = self._predictions, []
            try:
                self.window.add_predictions(predicted)
            except (TypeError, ValueError) as error:
                log.warning("dropped %d predictions from the drift window: %s", len(predicted), error)
