"""The reference profile: what training data looked like, saved as small JSON beside the model."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipway.errors import ShipwayError
from shipway.files import write_atomic

PROFILE_FORMAT = "shipway.drift/v2"
# Profiles of this format counted no missing values (NaN was skipped, or became the category "nan").
OLD_FORMATS = ("shipway.drift/v1",)
REGENERATE = ("regenerate it from the training features with `shipway drift profile TRAINING_FILE --output PROFILE` "
              "(`make train` does this in a model repo)")
DEFAULT_BINS = 20
# Categories rarer than this share in training are folded into the "other" bucket,
# which keeps the profile small for high-cardinality columns.
DEFAULT_MAX_CATEGORIES = 50
# The platform's default bound on a feature's PSI (observability.slo.driftPsi); `drift check` exits 1 above it.
DEFAULT_MAX_PSI = 0.25


def is_missing(value: Any) -> bool:
    """A missing value, the same in training data and live requests: None, NaN, pandas' NA and NaT."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(value != value)
    return type(value).__name__ in ("NAType", "NaTType")


def float_values(column: Any) -> np.ndarray:
    """A column as floats, a missing or unreadable value (a stray string) as NaN."""
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        return column.reshape(-1)
    try:
        return np.asarray(column, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return np.array([_to_float(value) for value in column], dtype=np.float64)


def _to_float(value: Any) -> float:
    if is_missing(value):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _shares(counts: Sequence[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(count / total if total else 0.0 for count in counts)


class _Counted:
    """Shares from a feature's training counts per bin and its missing count."""

    counts: tuple[int, ...]
    missing: int

    @property
    def rows(self) -> int:
        """Training rows, missing ones included."""
        return sum(self.counts) + self.missing

    @property
    def proportions(self) -> tuple[float, ...]:
        """Each bin's share of the values present (for a categorical feature, "other" last)."""
        return _shares(self.counts)

    @property
    def shares(self) -> tuple[float, ...]:
        """Each bin's share of all rows, the missing bucket last: what PSI and JS compare."""
        return _shares((*self.counts, self.missing))


@dataclass(frozen=True)
class NumericFeature(_Counted):
    """A numeric feature: interior cut points, training counts per bin, and how many values were missing."""

    name: str
    cuts: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int = 0

    @property
    def bins(self) -> int:
        """Number of value bins, the two open-ended outer bins included (the missing bucket not)."""
        return len(self.cuts) + 1


@dataclass(frozen=True)
class CategoricalFeature(_Counted):
    """A categorical feature: known categories, training counts per category and "other", and missing values."""

    name: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    missing: int = 0

    @property
    def bins(self) -> int:
        """Number of buckets: one per known category and one for everything else (the missing bucket not)."""
        return len(self.categories) + 1


FeatureProfile = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class ReferenceProfile:
    """Every feature's reference distribution, in request order, and optionally the predictions'."""

    features: tuple[FeatureProfile, ...]
    prediction: FeatureProfile | None = None
    max_psi: float = DEFAULT_MAX_PSI

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in the order a request's columns are expected."""
        return tuple(feature.name for feature in self.features)

    def select(self, names: Sequence[str]) -> ReferenceProfile:
        """The profile of only the named features, in profile order, predictions kept; unknown names are refused.

        Its feature order is no longer a request's column order: keep the full profile for reading requests.
        """
        missing = [name for name in dict.fromkeys(names) if name not in self.feature_names]
        if missing:
            noun = "feature" if len(missing) == 1 else "features"
            raise ShipwayError(
                f"{noun} {', '.join(map(repr, missing))} not in the reference profile, "
                f"which has: {', '.join(self.feature_names) or '(no features)'}"
            )
        wanted = set(names)
        return ReferenceProfile(
            features=tuple(feature for feature in self.features if feature.name in wanted), prediction=self.prediction,
            max_psi=self.max_psi,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "format": PROFILE_FORMAT,
            "max_psi": self.max_psi,
            "features": [_feature_to_dict(feature) for feature in self.features],
            "prediction": _feature_to_dict(self.prediction) if self.prediction else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Read a dict written by `to_dict`, failing with a clear message on anything else."""
        if data.get("format") in OLD_FORMATS:
            raise ShipwayError(
                f"drift reference profile of the old format {data.get('format')!r}, which did not count missing "
                f"values or keep the counts the categorical test needs; {REGENERATE}"
            )
        if data.get("format") != PROFILE_FORMAT:
            raise ShipwayError(
                f"not a drift reference profile: format is {data.get('format')!r}, expected {PROFILE_FORMAT!r}"
            )
        try:
            features = tuple(_feature_from_dict(item) for item in data["features"])
            prediction = _feature_from_dict(data["prediction"]) if data.get("prediction") else None
            max_psi = float(data.get("max_psi", DEFAULT_MAX_PSI))
        except (KeyError, TypeError, ValueError) as error:
            raise ShipwayError(f"malformed drift reference profile: {error!r}; {REGENERATE}") from None
        return cls(features=features, prediction=prediction, max_psi=max_psi)

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON and return the path; a reader never sees half a profile."""
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        write_atomic(target, text)
        return target

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Load a profile saved by `save`."""
        source = Path(path)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ShipwayError(f"{source}: reference profile not found") from None
        except json.JSONDecodeError as error:
            raise ShipwayError(f"{source}:{error.lineno}: not valid JSON: {error.msg}") from None
        try:
            return cls.from_dict(data)
        except ShipwayError as error:
            raise ShipwayError(f"{source}: {error}") from None


def numeric_feature(name: str, values: Any, bins: int = DEFAULT_BINS) -> NumericFeature:
    """Profile one numeric column by its quantiles; missing values are counted in a bucket of their own."""
    column = float_values(values)
    present = column[~np.isnan(column)]
    missing = int(column.size - present.size)
    if present.size == 0:
        raise ShipwayError(f"feature {name!r} has no numeric values to profile")
    # Cut points are observed values (inverted CDF), so a discrete column cuts at its own levels.
    quantiles = np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="inverted_cdf")
    # Ties (a discrete or constant column) collapse into fewer bins rather than empty ones.
    cuts = np.unique(quantiles)
    top = float(present.max())
    if cuts[-1] == top:
        # The top bin holds only the largest training value: one more cut just above it, so a live value
        # above anything seen in training (5.0 -> 100.0 for a constant feature) lands in a bin of its own.
        cuts = np.append(cuts, np.nextafter(top, np.inf))
    counts = np.bincount(np.searchsorted(cuts, present, side="right"), minlength=cuts.size + 1)
    return NumericFeature(
        name=name,
        cuts=tuple(float(cut) for cut in cuts),
        counts=tuple(int(count) for count in counts),
        missing=missing,
    )


def categorical_feature(
    name: str, values: Sequence[Any] | np.ndarray, max_categories: int = DEFAULT_MAX_CATEGORIES
) -> CategoricalFeature:
    """Profile one categorical column by category counts; the rarest go to "other", missing values apart."""
    missing = sum(1 for value in values if is_missing(value))
    present = [str(value) for value in values if not is_missing(value)]
    if not present and not missing:
        raise ShipwayError(f"feature {name!r} has no values to profile")
    labels, counts = np.unique(np.asarray(present, dtype=object), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:max_categories]
    kept = [str(labels[index]) for index in order]
    kept_counts = [int(counts[index]) for index in order]
    other = int(counts.sum()) - sum(kept_counts)
    return CategoricalFeature(name=name, categories=tuple(kept), counts=(*kept_counts, other), missing=missing)


def build_profile(
    data: Any,
    feature_names: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    predictions: Any | None = None,
    categorical_predictions: bool | None = None,
    bins: int = DEFAULT_BINS,
    max_psi: float = DEFAULT_MAX_PSI,
) -> ReferenceProfile:
    """Build a profile from training features: a pandas DataFrame or a 2-D numpy array.

    Object, string, boolean and category columns of a DataFrame are categorical
    unless listed otherwise; for a numpy array, `categorical` names them.
    Predictions are profiled as categorical when they are integers, strings or
    booleans (class labels), unless `categorical_predictions` says otherwise.
    """
    columns = _columns(data, feature_names)
    chosen_categorical = set(categorical)
    unknown = chosen_categorical - {name for name, _ in columns}
    if unknown:
        raise ShipwayError(f"categorical features not in the data: {sorted(unknown)}")
    features: list[FeatureProfile] = []
    for name, values in columns:
        if name in chosen_categorical or not _is_numeric(values):
            features.append(categorical_feature(name, values))
        else:
            features.append(numeric_feature(name, values, bins))
    prediction: FeatureProfile | None = None
    if predictions is not None:
        prediction_values = np.asarray(predictions).reshape(-1)
        as_categories = (
            categorical_predictions
            if categorical_predictions is not None
            else prediction_values.dtype.kind in "biuOSU"
        )
        prediction = (
            categorical_feature("prediction", prediction_values)
            if as_categories
            else numeric_feature("prediction", prediction_values, bins)
        )
    return ReferenceProfile(features=tuple(features), prediction=prediction, max_psi=max_psi)


def _columns(data: Any, feature_names: Sequence[str] | None) -> list[tuple[str, np.ndarray]]:
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):
        names = list(feature_names) if feature_names is not None else [str(name) for name in data.columns]
        missing = [name for name in names if name not in data.columns]
        if missing:
            raise ShipwayError(f"features not in the data frame: {missing}")
        return [(name, data[name].to_numpy()) for name in names]
    array = np.asarray(data)
    if array.ndim != 2:
        raise ShipwayError(f"training features must be 2-D (rows x features), got shape {array.shape}")
    names = list(feature_names) if feature_names is not None else [f"f{index}" for index in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ShipwayError(f"{len(names)} feature names given for {array.shape[1]} columns")
    return [(name, array[:, index]) for index, name in enumerate(names)]


def _is_numeric(values: np.ndarray) -> bool:
    return np.asarray(values).dtype.kind in "iuf"


def _feature_to_dict(feature: FeatureProfile) -> dict[str, Any]:
    if isinstance(feature, NumericFeature):
        return {"name": feature.name, "kind": "numeric", "cuts": list(feature.cuts), "counts": list(feature.counts),
                "missing": feature.missing}
    return {"name": feature.name, "kind": "categorical", "categories": list(feature.categories),
            "counts": list(feature.counts), "missing": feature.missing}


def _feature_from_dict(data: Mapping[str, Any]) -> FeatureProfile:
    kind = data["kind"]
    counts = tuple(int(count) for count in data["counts"])
    missing = int(data.get("missing", 0))
    if min((*counts, missing)) < 0:
        raise ValueError(f"feature {data['name']!r}: counts must not be negative")
    if kind == "numeric":
        cuts = tuple(float(cut) for cut in data["cuts"])
        if len(counts) != len(cuts) + 1 or list(cuts) != sorted(cuts):
            raise ValueError(f"feature {data['name']!r}: cuts must be sorted and one fewer than counts")
        return NumericFeature(name=str(data["name"]), cuts=cuts, counts=counts, missing=missing)
    if kind == "categorical":
        categories = tuple(str(category) for category in data["categories"])
        if len(counts) != len(categories) + 1:
            raise ValueError(f"feature {data['name']!r}: need one count per category plus 'other'")
        return CategoricalFeature(name=str(data["name"]), categories=categories, counts=counts, missing=missing)
    raise ValueError(f"feature {data.get('name')!r}: unknown kind {kind!r} (expected numeric or categorical)")
