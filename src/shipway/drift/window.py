"""Live drift windows: incremental bin counts against a reference profile, never raw rows.

A window keeps `slices` count matrices of shape (features, bins) and a running
total; when the newest slice has seen `window_rows / slices` rows the oldest
slice is dropped from the total. Memory is O(features x bins x slices) however
many rows pass through, and the window covers the last `window_rows` rows to
within one slice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipway.drift import stats
from shipway.drift.profile import (
    CategoricalFeature,
    FeatureProfile,
    NumericFeature,
    ReferenceProfile,
    float_values,
    is_missing,
)

DEFAULT_WINDOW_ROWS = 2000
_LARGEST = np.finfo(np.float64).max
DEFAULT_SLICES = 4


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift in the current window; statistics that do not apply are NaN.

    `rows` counts the rows in which the feature was observed, a missing value (null, NaN)
    included and a request that did not carry the feature at all not: the per-feature
    minimum-rows guard of the drift alert reads it.
    """

    name: str
    kind: str
    rows: int
    psi: float
    js: float
    ks: float
    chi2_pvalue: float
    missing: int = 0
    missing_share: float = float("nan")
    reference_missing_share: float = float("nan")


@dataclass(frozen=True)
class DriftStatistics:
    """Every feature's drift, the predictions' drift, and how many rows the window holds."""

    rows: int
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None

    @property
    def max_psi(self) -> float:
        """The largest feature PSI, NaN when no feature has rows."""
        values = [feature.psi for feature in self.features if feature.rows > 0]
        return max(values) if values else float("nan")


class _NumericBlock:
    """Bins numeric columns by each feature's reference cut points (padded to one matrix)."""

    kind = "numeric"
    # Above this many comparisons a batch is counted cut by cut on each column
    # instead of broadcasting one (rows, features, cuts) comparison.
    BROADCAST_LIMIT = 2_000_000

    def __init__(self, features: Sequence[NumericFeature]) -> None:
        self.names = tuple(feature.name for feature in features)
        # Value bins, then each feature's missing bucket right after its own value bins.
        self.width = max((feature.bins for feature in features), default=1) + 1
        # Padding cuts with +inf makes the extra bins empty, so one matrix serves every feature.
        self.cuts = np.full((len(features), self.width - 2), np.inf)
        for index, feature in enumerate(features):
            self.cuts[index, : len(feature.cuts)] = feature.cuts
        self.missing_index = np.array([feature.bins for feature in features], dtype=np.intp)
        self.reference, self.mask, self.value_mask = _reference(features, self.width)

    def count(self, columns: Sequence[Any]) -> np.ndarray:
        """Bin counts (features, bins) of one batch, missing values (None, NaN, unreadable) in the missing bucket.

        Bin j holds values in [cut[j-1], cut[j]), so each bin count is a
        difference of "values below cut" counts: no per-row bin index is built.
        """
        # +inf belongs in a feature's top bin, as in the profile; left as is it would pass the +inf
        # padding cuts of a feature with fewer bins and land in a padding bin no statistic reads.
        arrays = [np.minimum(float_values(column), _LARGEST) for column in columns]
        below = np.empty(self.cuts.shape, dtype=np.int64)
        valid = np.empty(len(arrays), dtype=np.int64)
        lengths = {array.size for array in arrays}
        if len(lengths) == 1 and lengths.pop() * self.cuts.size <= self.BROADCAST_LIMIT:
            matrix = np.stack(arrays, axis=1)
            below[:] = (matrix[:, :, None] < self.cuts[None, :, :]).sum(axis=0)
            valid[:] = matrix.shape[0] - np.isnan(matrix).sum(axis=0)
        else:
            for index, array in enumerate(arrays):
                array = np.ascontiguousarray(array)
                below[index] = [np.count_nonzero(array < cut) for cut in self.cuts[index]]
                valid[index] = array.size - np.count_nonzero(np.isnan(array))
        cumulative = np.concatenate([below, valid[:, None]], axis=1)
        counts = np.zeros((len(arrays), self.width), dtype=np.int64)
        counts[:, :-1] = np.diff(cumulative, axis=1, prepend=0)
        given = np.array([array.size for array in arrays], dtype=np.int64)
        counts[np.arange(len(arrays)), self.missing_index] += given - valid
        return counts


class _CategoricalBlock:
    """Buckets categorical columns by each feature's known categories, the rest into "other"."""

    kind = "categorical"

    def __init__(self, features: Sequence[CategoricalFeature]) -> None:
        self.names = tuple(feature.name for feature in features)
        self.width = max((feature.bins for feature in features), default=1) + 1
        self.lookups = [{category: i for i, category in enumerate(f.categories)} for f in features]
        self.reference, self.mask, self.value_mask = _reference(features, self.width)

    def count(self, columns: Sequence[Any]) -> np.ndarray:
        """Bucket counts (features, buckets) of one batch: known categories, "other", then missing values."""
        indexes: list[int] = []
        for index, (lookup, column) in enumerate(zip(self.lookups, columns, strict=True)):
            other = len(lookup)
            offset = index * self.width
            indexes.extend(
                offset + (other + 1 if is_missing(value) else lookup.get(str(value), other)) for value in column
            )
        flat = np.bincount(np.asarray(indexes, dtype=np.intp), minlength=len(self.names) * self.width)
        return flat.reshape(len(self.names), self.width)


_Block = _NumericBlock | _CategoricalBlock


class _SlidingCounts:
    """A ring of count slices with a running total: the window's only state."""

    def __init__(self, features: int, width: int, window_rows: int | None, slices: int) -> None:
        self.shape = (features, width)
        self.slices = np.zeros((slices, features, width), dtype=np.int64)
        self.slice_rows = np.zeros(slices, dtype=np.int64)
        self.total = np.zeros(self.shape, dtype=np.int64)
        self.current = 0
        self.rows_per_slice = None if window_rows is None else max(1, -(-window_rows // slices))

    def add(self, counts: np.ndarray, rows: int) -> None:
        """Add one batch's counts to the newest slice, rotating first if it is full."""
        if self.rows_per_slice is not None and self.slice_rows[self.current] >= self.rows_per_slice:
            self._rotate()
        self.slices[self.current] += counts
        self.total += counts
        self.slice_rows[self.current] += rows

    def _rotate(self) -> None:
        self.current = (self.current + 1) % len(self.slices)
        self.total -= self.slices[self.current]
        self.slices[self.current] = 0
        self.slice_rows[self.current] = 0

    @property
    def rows(self) -> int:
        """Rows currently inside the window."""
        return int(self.slice_rows.sum())


class DriftWindow:
    """A sliding window of live feature and prediction counts, compared against a reference profile."""

    def __init__(
        self,
        profile: ReferenceProfile,
        window_rows: int | None = DEFAULT_WINDOW_ROWS,
        slices: int = DEFAULT_SLICES,
    ) -> None:
        if window_rows is not None and window_rows < 1:
            raise ValueError(f"window_rows must be positive, got {window_rows}")
        self.profile = profile
        numeric = [f for f in profile.features if isinstance(f, NumericFeature)]
        categorical = [f for f in profile.features if isinstance(f, CategoricalFeature)]
        self._blocks: list[_Block] = [_NumericBlock(numeric), _CategoricalBlock(categorical)]
        self._block_counts = [
            _SlidingCounts(len(block.names), block.width, window_rows, slices) for block in self._blocks
        ]
        self._prediction_block = _block_for(profile.prediction) if profile.prediction else None
        self._prediction_counts = (
            _SlidingCounts(1, self._prediction_block.width, window_rows, slices) if self._prediction_block else None
        )

    @property
    def rows(self) -> int:
        """Rows of features inside the window."""
        return max(counts.rows for counts in self._block_counts)

    def add_columns(self, columns: Mapping[str, Sequence[Any]], rows: int) -> None:
        """Count a batch of `rows` rows given column-wise; absent features count as missing."""
        for block, counts in zip(self._blocks, self._block_counts, strict=True):
            if block.names:
                block_columns = [columns.get(name, ()) for name in block.names]
                counts.add(block.count(block_columns), rows)

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Count rows whose values are in the profile's feature order."""
        if not rows:
            return
        names = self.profile.feature_names
        columns = {name: [row[index] for row in rows if index < len(row)] for index, name in enumerate(names)}
        self.add_columns(columns, len(rows))

    def add_predictions(self, values: Sequence[Any]) -> None:
        """Count a batch of predictions; ignored when the profile has no prediction reference."""
        if self._prediction_block is None or self._prediction_counts is None or not len(values):
            return
        self._prediction_counts.add(self._prediction_block.count([values]), len(values))

    def statistics(self) -> DriftStatistics:
        """Drift of every feature and of the predictions over the current window."""
        by_name: dict[str, FeatureDrift] = {}
        for block, counts in zip(self._blocks, self._block_counts, strict=True):
            if block.names:
                by_name.update((d.name, d) for d in _block_statistics(block, counts.total))
        prediction = None
        if self._prediction_block is not None and self._prediction_counts is not None:
            prediction = _block_statistics(self._prediction_block, self._prediction_counts.total)[0]
        return DriftStatistics(
            rows=self.rows,
            features=tuple(by_name[name] for name in self.profile.feature_names),
            prediction=prediction,
        )


def compare(profile: ReferenceProfile, columns: Mapping[str, Sequence[Any]], rows: int) -> DriftStatistics:
    """One-shot drift of a whole data set (column-wise) against the profile."""
    window = DriftWindow(profile, window_rows=None, slices=1)
    window.add_columns(columns, rows)
    return window.statistics()


def _block_for(feature: FeatureProfile) -> _Block:
    if isinstance(feature, NumericFeature):
        return _NumericBlock([feature])
    return _CategoricalBlock([feature])


def _reference(features: Sequence[FeatureProfile], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference counts padded to one matrix (missing bucket right after each feature's own bins) and the masks."""
    reference = np.zeros((len(features), width), dtype=np.int64)
    for index, feature in enumerate(features):
        reference[index, : feature.bins + 1] = (*feature.counts, feature.missing)
    bins = np.array([feature.bins for feature in features], dtype=np.intp)[:, None]
    columns = np.arange(width)[None, :]
    return reference, columns <= bins, columns < bins


def _block_statistics(block: _Block, counts: np.ndarray) -> list[FeatureDrift]:
    rows = counts.sum(axis=1)
    psi = stats.psi(block.reference, counts, block.mask)
    js = stats.js_distance(block.reference, counts, block.mask)
    nan = np.full(len(block.names), np.nan)
    if block.kind == "numeric":
        ks, pvalues = stats.ks_binned(block.reference, counts, block.value_mask), nan
    else:
        ks, pvalues = nan, stats.chi2_two_sample_pvalue(block.reference, counts, block.mask)
    missing_bucket = block.mask & ~block.value_mask
    missing = np.where(missing_bucket, counts, 0).sum(axis=1)
    reference_missing = np.where(missing_bucket, block.reference, 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        missing_share = np.where(rows > 0, missing / np.maximum(rows, 1), np.nan)
        reference_share = reference_missing / block.reference.sum(axis=1)
    return [
        FeatureDrift(
            name=name,
            kind=block.kind,
            rows=int(rows[index]),
            psi=float(psi[index]),
            js=float(js[index]),
            ks=float(ks[index]),
            chi2_pvalue=float(pvalues[index]),
            missing=int(missing[index]),
            missing_share=float(missing_share[index]),
            reference_missing_share=float(reference_share[index]),
        )
        for index, name in enumerate(block.names)
    ]
