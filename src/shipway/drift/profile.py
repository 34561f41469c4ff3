"""The reference profile: what training data looked like, saved as small JSON beside the model."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipway.errors import ShipwayError
from shipway.files import write_atomic

PROFILE_FORMAT = "shipway.drift/v1"
DEFAULT_BINS = 20
# Categories rarer than this share in training are folded into the "other" bucket,
# which keeps the profile small for high-cardinality columns.
DEFAULT_MAX_CATEGORIES = 50


@dataclass(frozen=True)
class NumericFeature:
    """A numeric feature: interior quantile cut points and the training share of each bin."""

    name: str
    cuts: tuple[float, ...]
    proportions: tuple[float, ...]
    rows: int

    @property
    def bins(self) -> int:
        """Number of bins, the two open-ended outer bins included."""
        return len(self.cuts) + 1


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical feature: known categories and their training shares, plus an "other" share."""

    name: str
    categories: tuple[str, ...]
    proportions: tuple[float, ...]
    rows: int

    @property
    def bins(self) -> int:
        """Number of buckets: one per known category and one for everything else."""
        return len(self.categories) + 1


FeatureProfile = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class ReferenceProfile:
    """Every feature's reference distribution, in request order, and optionally the predictions'."""

    features: tuple[FeatureProfile, ...]
    prediction: FeatureProfile | None = None

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
            features=tuple(feature for feature in self.features if feature.name in wanted), prediction=self.prediction
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "format": PROFILE_FORMAT,
            "features": [_feature_to_dict(feature) for feature in self.features],
            "prediction": _feature_to_dict(self.prediction) if self.prediction else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Read a dict written by `to_dict`, failing with a clear message on anything else."""
        if data.get("format") != PROFILE_FORMAT:
            raise ShipwayError(
                f"not a drift reference profile: format is {data.get('format')!r}, expected {PROFILE_FORMAT!r}"
            )
        try:
            features = tuple(_feature_from_dict(item) for item in data["features"])
            prediction = _feature_from_dict(data["prediction"]) if data.get("prediction") else None
        except (KeyError, TypeError, ValueError) as error:
            raise ShipwayError(f"malformed drift reference profile: {error!r}") from None
        return cls(features=features, prediction=prediction)

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
        return cls.from_dict(data)


def numeric_feature(name: str, values: np.ndarray, bins: int = DEFAULT_BINS) -> NumericFeature:
    """Profile one numeric column by its quantiles; NaNs are ignored."""
    column = np.asarray(values, dtype=np.float64)
    column = column[~np.isnan(column)]
    if column.size == 0:
        raise ShipwayError(f"feature {name!r} has no numeric values to profile")
    # Cut points are observed values (inverted CDF), so a discrete column cuts at its own levels.
    quantiles = np.quantile(column, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="inverted_cdf")
    # Ties (a discrete or constant column) collapse into fewer bins rather than empty ones.
    cuts = np.unique(quantiles)
    counts = np.bincount(np.searchsorted(cuts, column, side="right"), minlength=cuts.size + 1)
    return NumericFeature(
        name=name,
        cuts=tuple(float(cut) for cut in cuts),
        proportions=tuple(float(share) for share in counts / column.size),
        rows=int(column.size),
    )


def categorical_feature(
    name: str, values: Sequence[Any] | np.ndarray, max_categories: int = DEFAULT_MAX_CATEGORIES
) -> CategoricalFeature:
    """Profile one categorical column by category frequency; the rarest go to "other"."""
    labels, counts = np.unique(np.asarray([str(value) for value in values], dtype=object), return_counts=True)
    if labels.size == 0:
        raise ShipwayError(f"feature {name!r} has no values to profile")
    order = np.argsort(-counts, kind="stable")[:max_categories]
    total = int(counts.sum())
    kept = [str(labels[index]) for index in order]
    shares = [float(counts[index] / total) for index in order]
    other = max(0.0, 1.0 - math.fsum(shares))
    return CategoricalFeature(name=name, categories=tuple(kept), proportions=(*shares, other), rows=total)


def build_profile(
    data: Any,
    feature_names: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    predictions: Any | None = None,
    categorical_predictions: bool | None = None,
    bins: int = DEFAULT_BINS,
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
    return ReferenceProfile(features=tuple(features), prediction=prediction)


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
        return {
            "name": feature.name,
            "kind": "numeric",
            "cuts": list(feature.cuts),
            "proportions": list(feature.proportions),
            "rows": feature.rows,
        }
    return {
        "name": feature.name,
        "kind": "categorical",
        "categories": list(feature.categories),
        "proportions": list(feature.proportions),
        "rows": feature.rows,
    }


def _feature_from_dict(data: Mapping[str, Any]) -> FeatureProfile:
    kind = data["kind"]
    proportions = tuple(float(share) for share in data["proportions"])
    if kind == "numeric":
        cuts = tuple(float(cut) for cut in data["cuts"])
        if len(proportions) != len(cuts) + 1 or list(cuts) != sorted(cuts):
            raise ValueError(f"feature {data['name']!r}: cuts must be sorted and one fewer than proportions")
        return NumericFeature(name=str(data["name"]), cuts=cuts, proportions=proportions, rows=int(data["rows"]))
    if kind == "categorical":
        categories = tuple(str(category) for category in data["categories"])
        if len(proportions) != len(categories) + 1:
            raise ValueError(f"feature {data['name']!r}: need one proportion per category plus 'other'")
        return CategoricalFeature(
            name=str(data["name"]), categories=categories, proportions=proportions, rows=int(data["rows"])
        )
    raise ValueError(f"feature {data.get('name')!r}: unknown kind {kind!r} (expected numeric or categorical)")
