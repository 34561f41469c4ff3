"""Drift statistics over binned counts, vectorised across features.

Every function takes a reference matrix of bin shares and a live matrix of bin
counts, both shaped (features, bins), plus a mask of the bins that exist for
each feature (features have different bin counts, so the matrices are padded).
A feature with no live rows gets NaN.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

# Floor for an empty bin's share: the usual PSI smoothing, so that a bin seen on
# one side only adds a large but finite term instead of infinity.
SHARE_FLOOR = 1e-4


def live_shares(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's live bin shares and row count."""
    rows = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / rows[:, None]
    return shares, rows


def psi(reference: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Population stability index per feature: sum of (live - ref) * ln(live / ref) over bins."""
    shares, rows = live_shares(counts)
    expected = np.maximum(reference, SHARE_FLOOR)
    actual = np.maximum(np.nan_to_num(shares), SHARE_FLOOR)
    terms = np.where(mask, (actual - expected) * np.log(actual / expected), 0.0)
    return np.where(rows > 0, terms.sum(axis=1), np.nan)


def js_distance(reference: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance per feature, base 2, so 0 is identical and 1 is disjoint."""
    shares, rows = live_shares(counts)
    reference_shares = np.where(mask, reference, 0.0)
    live = np.where(mask, np.nan_to_num(shares), 0.0)
    middle = (reference_shares + live) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        # 0 * log(0 / m) is 0 by convention; np.where picks it before the NaN matters.
        left = np.where(reference_shares > 0, reference_shares * np.log2(reference_shares / middle), 0.0)
        right = np.where(live > 0, live * np.log2(live / middle), 0.0)
    divergence = np.clip(0.5 * left.sum(axis=1) + 0.5 * right.sum(axis=1), 0.0, 1.0)
    return np.where(rows > 0, np.sqrt(divergence), np.nan)


def ks_binned(reference: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov statistic per numeric feature, evaluated at the reference cut points only.

    The live and reference empirical CDFs are compared at each interior cut
    point (the reference quantiles), not at every observed value. The result is
    therefore a lower bound on the exact two-sample KS statistic, and the exact
    one exceeds it by at most the largest single-bin share on either side (both
    CDFs are monotone between cut points); with 20 quantile bins that is about
    0.05 for in-distribution data. Shifts that move mass across cut points, the
    ones that matter for a model, are measured exactly.
    """
    shares, rows = live_shares(counts)
    live_cdf = np.cumsum(np.nan_to_num(shares), axis=1)
    reference_cdf = np.cumsum(reference, axis=1)
    # The last bin's CDF is 1 on both sides; padding columns repeat it, so they add nothing.
    gaps = np.where(mask, np.abs(live_cdf - reference_cdf), 0.0)
    return np.where(rows > 0, gaps.max(axis=1), np.nan)


def chi2_pvalue(reference: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Chi-square goodness-of-fit p-value per categorical feature against the reference shares.

    An unseen category lands in the "other" bucket, whose reference share is
    floored, so a burst of new categories drives the p-value to 0. The usual
    caveat holds: with expected counts under 5 the p-value is approximate.
    """
    rows = counts.sum(axis=1)
    expected_shares = np.where(mask, np.maximum(reference, SHARE_FLOOR), 0.0)
    expected_shares = expected_shares / expected_shares.sum(axis=1, keepdims=True)
    expected = expected_shares * rows[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(mask & (expected > 0), (counts - expected) ** 2 / expected, 0.0)
    # A bucket empty in both reference and live data carries no information.
    informative = mask & ((reference > 0) | (counts > 0))
    degrees = np.maximum(informative.sum(axis=1) - 1, 1)
    pvalues = scipy_stats.chi2.sf(terms.sum(axis=1), degrees)
    return np.where(rows > 0, pvalues, np.nan)
