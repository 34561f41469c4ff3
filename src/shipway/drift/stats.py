"""Drift statistics over binned counts, vectorised across features.

Every function takes the reference's bin counts and the live bin counts, both shaped
(features, bins), plus a mask of the bins that exist for each feature (features have
different bin counts, so the matrices are padded). Each feature's last real bin is its
missing bucket: a missing value (None, NaN, a JSON null) is a category of its own in
training and live data alike, counted the same way on both sides. A feature with no live
rows gets NaN.

What each statistic is, its bias, and which one alerts:

PSI (population stability index, ``psi``) -- alerts use this one
    sum over bins of (live share - reference share) x ln(live share / reference share), the
    missing bucket included, with empty shares floored at SHARE_FLOOR. Biased upwards by
    sampling noise: with K bins, n live rows and m reference rows its expectation under no
    drift is about (K - 1) x (1/n + 1/m), e.g. 0.02 for 20 bins, 2,000 live and 10,000
    reference rows, well under the usual 0.25 bound. A missingness change (0 % missing in
    training, 90 % live) raises it like any other shift. The sidecar exports it per
    feature; ``ShipwayModelFeatureDrift`` fires when the largest PSI of the features with
    at least ``minRows`` rows of their own in the window exceeds the bound.
JS (Jensen-Shannon distance, ``js_distance``)
    the square root of the base-2 Jensen-Shannon divergence of the two share vectors,
    missing bucket included: 0 identical, 1 disjoint. Bounded and symmetric; biased
    upwards by noise like PSI. Exported, not alerted on.
KS (``ks_binned``), numeric features
    the largest gap between the live and reference CDFs of the values present (the
    missing bucket excluded, so it describes the values, not their missingness), read at
    the reference cut points only. So it is a lower bound on the exact two-sample KS
    statistic, short by at most the largest single-bin share on either side (about 0.05
    with 20 quantile bins). Exported, not alerted on.
Chi-square two-sample test (``chi2_two_sample_pvalue``), categorical features
    the p-value of Pearson's test of homogeneity on the 2 x K table of reference and live
    counts (missing bucket and "other" included; buckets empty on both sides dropped), so
    the reference's own sampling noise is accounted for: with 1,000 reference rows and a
    2,000-row window, the share of undrifted windows with p < 0.05 is about 0.05
    (tests/unit/drift/test_drift_stats.py measures it by simulation), where a
    goodness-of-fit test against the reference shares as if exact gave 0.57-1.0. The
    chi-square approximation is rough when expected counts fall under 5. Exported, not
    alerted on.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

# Floor for an empty bin's share: the usual PSI smoothing, so that a bin seen on
# one side only adds a large but finite term instead of infinity.
SHARE_FLOOR = 1e-4


def shares(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's bin shares and row count."""
    rows = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = counts / rows[:, None]
    return np.nan_to_num(result), rows


def psi(reference: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Population stability index per feature: sum of (live - ref) * ln(live / ref) over bins."""
    reference_shares, _ = shares(reference)
    live, rows = shares(counts)
    expected = np.maximum(reference_shares, SHARE_FLOOR)
    actual = np.maximum(live, SHARE_FLOOR)
    terms = np.where(mask, (actual - expected) * np.log(actual / expected), 0.0)
    return np.where(rows > 0, terms.sum(axis=1), np.nan)


def js_distance(reference: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance per feature, base 2, so 0 is identical and 1 is disjoint."""
    reference_shares, _ = shares(reference)
    live, rows = shares(counts)
    reference_shares = np.where(mask, reference_shares, 0.0)
    live = np.where(mask, live, 0.0)
    middle = (reference_shares + live) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        # 0 * log(0 / m) is 0 by convention; np.where picks it before the NaN matters.
        left = np.where(reference_shares > 0, reference_shares * np.log2(reference_shares / middle), 0.0)
        right = np.where(live > 0, live * np.log2(live / middle), 0.0)
    divergence = np.clip(0.5 * left.sum(axis=1) + 0.5 * right.sum(axis=1), 0.0, 1.0)
    return np.where(rows > 0, np.sqrt(divergence), np.nan)


def ks_binned(reference: np.ndarray, counts: np.ndarray, value_mask: np.ndarray) -> np.ndarray:
    """KS statistic per numeric feature on the values present, at the reference cut points only (a lower bound)."""
    reference_values, _ = shares(np.where(value_mask, reference, 0))
    live_values, rows = shares(np.where(value_mask, counts, 0))
    gaps = np.where(value_mask, np.abs(np.cumsum(live_values, axis=1) - np.cumsum(reference_values, axis=1)), 0.0)
    return np.where(rows > 0, gaps.max(axis=1), np.nan)


def chi2_two_sample_pvalue(reference: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pearson's chi-square test of homogeneity of reference and live counts per feature (no continuity correction)."""
    reference = np.where(mask, reference, 0).astype(np.float64)
    live = np.where(mask, counts, 0).astype(np.float64)
    reference_rows, live_rows = reference.sum(axis=1), live.sum(axis=1)
    total = reference_rows + live_rows
    pooled = reference + live
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_reference = pooled * (reference_rows / total)[:, None]
        expected_live = pooled * (live_rows / total)[:, None]
        terms = np.where(
            pooled > 0,
            (reference - expected_reference) ** 2 / expected_reference + (live - expected_live) ** 2 / expected_live,
            0.0,
        )
    degrees = (pooled > 0).sum(axis=1) - 1
    statistic = terms.sum(axis=1)
    pvalues = np.where(degrees > 0, scipy_stats.chi2.sf(statistic, np.maximum(degrees, 1)), 1.0)
    return np.where((live_rows > 0) & (reference_rows > 0), pvalues, np.nan)
