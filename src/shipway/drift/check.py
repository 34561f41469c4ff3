"""`shipway drift check`: the sidecar's drift statistics on a batch file, for offline checks.

A batch-scoring job's inputs, or a new training set, are compared with the reference profile
exactly as the sidecar compares a live window (the same bins, missing bucket and statistics,
`window.DriftWindow`), and every feature whose PSI is over the bound is named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway.drift.data import DriftInputError, read_frame
from shipway.drift.profile import ReferenceProfile
from shipway.drift.window import DriftStatistics, DriftWindow, FeatureDrift
from shipway.errors import ShipwayError


@dataclass(frozen=True)
class DriftCheck:
    """A batch's drift against a profile, and which features are over the PSI bound."""

    profile: str
    data: str
    max_psi: float
    min_rows: int
    statistics: DriftStatistics

    def over(self, feature: FeatureDrift) -> bool:
        """Whether the feature counts as drifted: enough rows of its own, and PSI over the bound."""
        return feature.rows >= self.min_rows and math.isfinite(feature.psi) and feature.psi > self.max_psi

    @property
    def drifted(self) -> tuple[str, ...]:
        """Names of the features over the bound, in profile order."""
        return tuple(feature.name for feature in self.statistics.features if self.over(feature))

    def to_dict(self) -> dict[str, Any]:
        """The check as plain data (JSON has no NaN: an undefined figure is null)."""
        return {
            "profile": self.profile,
            "data": self.data,
            "rows": self.statistics.rows,
            "max_psi": self.max_psi,
            "min_rows": self.min_rows,
            "drifted": list(self.drifted),
            "features": [self._feature(feature) for feature in self.statistics.features],
            "prediction": None if self.statistics.prediction is None else self._feature(self.statistics.prediction),
        }

    def _feature(self, feature: FeatureDrift) -> dict[str, Any]:
        def number(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {
            "name": feature.name,
            "kind": feature.kind,
            "rows": feature.rows,
            "missing_share": number(feature.missing_share),
            "reference_missing_share": number(feature.reference_missing_share),
            "psi": number(feature.psi),
            "js": number(feature.js),
            "ks": number(feature.ks),
            "chi2_pvalue": number(feature.chi2_pvalue),
            "over_bound": self.over(feature),
        }


def check_file(
    profile_path: Path,
    data_path: Path,
    max_psi: float | None = None,
    min_rows: int = 1,
    prediction: str | None = None,
) -> DriftCheck:
    """Compare every profiled feature of DATA (CSV or parquet) with the profile."""
    try:
        profile = ReferenceProfile.load(profile_path)
    except ShipwayError as error:
        raise DriftInputError(str(error)) from None
    bound = profile.max_psi if max_psi is None else max_psi
    if not (math.isfinite(bound) and bound > 0):
        raise DriftInputError(f"--max-psi must be a positive number, got {bound}")
    if min_rows < 1:
        raise DriftInputError(f"--min-rows must be at least 1, got {min_rows}")
    frame = read_frame(data_path, DriftInputError)
    wanted = list(profile.feature_names) + ([prediction] if prediction else [])
    absent = [name for name in wanted if name not in frame.columns]
    if absent:
        raise DriftInputError(
            f"{data_path}: column {absent[0]!r} is not in the data, which has: "
            f"{', '.join(map(str, frame.columns)) or '(no columns)'}"
        )
    if prediction and profile.prediction is None:
        raise DriftInputError(f"{profile_path}: the profile has no prediction reference to check --prediction against")
    # One window holding the whole file: the sidecar's counting and statistics, without the sliding.
    window = DriftWindow(profile, window_rows=None, slices=1)
    window.add_columns({name: frame[name].to_numpy() for name in profile.feature_names}, len(frame))
    if prediction:
        window.add_predictions(list(frame[prediction].to_numpy()))
    return DriftCheck(str(profile_path), str(data_path), bound, min_rows, window.statistics())
