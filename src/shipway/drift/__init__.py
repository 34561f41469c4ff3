"""Drift statistics: reference profiles from training data and live windows compared against them."""

from shipway.drift.profile import (
    CategoricalFeature,
    NumericFeature,
    ReferenceProfile,
    build_profile,
)
from shipway.drift.window import DriftStatistics, DriftWindow, FeatureDrift, compare

__all__ = [
    "CategoricalFeature",
    "DriftStatistics",
    "DriftWindow",
    "FeatureDrift",
    "NumericFeature",
    "ReferenceProfile",
    "build_profile",
    "compare",
]
