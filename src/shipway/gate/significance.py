"""Classical paired tests: McNemar's test for two classifiers, and Holm's step-down correction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Below this many discordant pairs the chi-square approximation is poor, so
# the exact binomial test is used (the usual textbook rule, as in statsmodels' docs).
EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on the discordant pairs of two classifiers scored on the same rows."""

    baseline_only: int
    candidate_only: int
    statistic: float
    p_value: float
    method: str


def mcnemar(baseline_only: int, candidate_only: int, exact_below: int = EXACT_BELOW) -> McNemarResult:
    """Two-sided McNemar test: exact binomial for few discordant pairs, chi-square with continuity otherwise."""
    from scipy import stats

    discordant = baseline_only + candidate_only
    if discordant == 0:
        return McNemarResult(baseline_only, candidate_only, 0.0, 1.0, "no discordant pairs")
    if discordant < exact_below:
        smaller = min(baseline_only, candidate_only)
        p_value = min(1.0, 2.0 * float(stats.binom.cdf(smaller, discordant, 0.5)))
        return McNemarResult(baseline_only, candidate_only, float(smaller), p_value, "exact binomial")
    statistic = (abs(baseline_only - candidate_only) - 1.0) ** 2 / discordant
    p_value = float(stats.chi2.sf(statistic, df=1))
    return McNemarResult(baseline_only, candidate_only, statistic, p_value, "chi-square with continuity correction")


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values: compare each with the family-wise level directly."""
    values = np.asarray(p_values, dtype=np.float64)
    count = values.shape[0]
    if count == 0:
        return values
    order = np.argsort(values, kind="stable")
    scaled = values[order] * (count - np.arange(count))
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty(count, dtype=np.float64)
    out[order] = adjusted
    return out
