"""Drift statistics against exact references (scipy) on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from shipway.drift.profile import ReferenceProfile, build_profile
from shipway.drift.window import compare


def _profile(train: np.ndarray) -> ReferenceProfile:
    return build_profile(train[:, None], feature_names=["x"])


def _drift(profile: ReferenceProfile, live: np.ndarray):
    return compare(profile, {"x": live}, live.size).features[0]


def test_in_distribution_data_shows_no_drift() -> None:
    rng = np.random.default_rng(3)
    profile = _profile(rng.normal(size=100_000))
    drift = _drift(profile, rng.normal(size=20_000))
    assert drift.psi < 0.01
    assert drift.ks < 0.02
    assert drift.js < 0.05


def test_shifted_data_shows_drift_of_the_textbook_size() -> None:
    rng = np.random.default_rng(4)
    profile = _profile(rng.normal(size=100_000))
    drift = _drift(profile, rng.normal(loc=1.0, size=20_000))
    # A one-sigma mean shift is a PSI near 1 and a KS near 0.38 (2 * Phi(0.5) - 1).
    assert drift.psi > 0.5
    assert drift.ks == pytest.approx(0.383, abs=0.03)


def test_binned_ks_bounds_the_exact_two_sample_statistic() -> None:
    rng = np.random.default_rng(5)
    train = rng.normal(size=50_000)
    profile = _profile(train)
    max_bin_share = max(profile.features[0].proportions)
    for loc, scale in [(0.0, 1.0), (0.3, 1.0), (0.0, 2.0), (-1.0, 0.5)]:
        live = rng.normal(loc=loc, scale=scale, size=10_000)
        exact = scipy_stats.ks_2samp(train, live).statistic
        binned = _drift(profile, live).ks
        assert binned <= exact + 1e-9
        live_counts = np.bincount(np.searchsorted(profile.features[0].cuts, live, side="right"))
        assert exact <= binned + max_bin_share + live_counts.max() / live.size


def test_js_distance_is_zero_for_identical_and_one_for_disjoint_data() -> None:
    train = np.arange(1000.0)
    profile = _profile(train)
    assert _drift(profile, train).js == pytest.approx(0.0, abs=1e-9)
    # All live mass lands in the lowest bin, which holds about 5% of the reference.
    lowest = profile.features[0].proportions[0]
    middle = (lowest + 1.0) / 2
    divergence = 0.5 * (lowest * np.log2(lowest / middle) + (1 - lowest)) + 0.5 * np.log2(1.0 / middle)
    assert _drift(profile, np.full(100, -5.0)).js == pytest.approx(np.sqrt(divergence))


def test_categorical_test_is_scipys_two_sample_chi_square_and_flags_new_categories() -> None:
    train = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200, dtype=object)
    profile = build_profile(train[:, None], feature_names=["c"], categorical=["c"])
    live = ["a"] * 45 + ["b"] * 35 + ["c"] * 20
    drift = compare(profile, {"c": live}, len(live)).features[0]
    expected = scipy_stats.chi2_contingency([[500, 300, 200], [45, 35, 20]], correction=False).pvalue
    assert drift.chi2_pvalue == pytest.approx(expected, rel=1e-9)
    assert np.isnan(drift.ks)
    unseen = ["z"] * 50 + ["a"] * 50
    drift = compare(profile, {"c": unseen}, len(unseen)).features[0]
    assert drift.chi2_pvalue < 1e-6
    assert drift.psi > 1.0


def test_missing_values_are_counted_in_their_own_bucket() -> None:
    profile = _profile(np.random.default_rng(6).normal(size=10_000))
    drift = _drift(profile, np.array([np.nan, 0.1, np.nan, -0.2]))
    assert (drift.rows, drift.missing, drift.missing_share, drift.reference_missing_share) == (4, 2, 0.5, 0.0)


def test_categorical_missing_values_on_both_sides_are_no_drift() -> None:
    """Issue #20 case 6: 10 % missing in training and live read PSI 0.70 and chi-square p 7e-43 before."""
    rng = np.random.default_rng(6)
    categories, shares = np.array(["a", "b", "c", "d"]), [0.4, 0.3, 0.2, 0.1]
    train = rng.choice(categories, 10_000, p=shares).astype(object)
    train[rng.random(10_000) < 0.10] = np.nan
    profile = build_profile(train[:, None], feature_names=["c"], categorical=["c"])
    live: list[object] = list(rng.choice(categories, 2000, p=shares))
    for index in np.flatnonzero(rng.random(2000) < 0.10):
        live[index] = None  # a JSON null
    drift = compare(profile, {"c": live}, len(live)).features[0]
    assert drift.psi < 0.01 and drift.chi2_pvalue > 0.05
    assert drift.missing_share == pytest.approx(drift.reference_missing_share, abs=0.02)


def test_a_value_above_a_constant_training_feature_is_full_drift() -> None:
    """Issue #20 case 7: constant 5.0 in training, 100.0 live: PSI 0, KS 0, JS 0 before."""
    profile = _profile(np.full(1000, 5.0))
    drift = _drift(profile, np.full(500, 100.0))
    # All live mass in a bin the reference leaves empty (floored at 1e-4), and the reverse.
    assert drift.psi == pytest.approx(2 * (1 - 1e-4) * np.log(1e4), rel=1e-9)
    assert (drift.ks, drift.js) == (1.0, 1.0)
    assert _drift(profile, np.full(500, 1.0)).psi == pytest.approx(drift.psi)
    assert _drift(profile, np.full(500, 5.0)).psi == 0.0


def test_missingness_drift_is_visible_in_psi_and_the_missing_share() -> None:
    """Issue #20 case 10: 0 % missing in training, 90 % live read PSI 0.13 (no alert) before."""
    rng = np.random.default_rng(10)
    profile = _profile(rng.normal(size=10_000))
    live = rng.normal(size=2000)
    live[rng.random(2000) < 0.9] = np.nan
    drift = _drift(profile, live)
    assert drift.missing_share == pytest.approx(0.9, abs=0.02) and drift.reference_missing_share == 0.0
    # The missing bucket alone: 0.9 x ln(0.9 / 1e-4) + 0.1 x ln(0.1) + the value bins' noise.
    assert drift.psi == pytest.approx(0.9 * np.log(0.9 / 1e-4) - 0.9 * np.log(0.1), abs=0.3)
    # KS describes the values present, which have not moved.
    assert drift.ks < 0.06


def test_a_mostly_missing_feature_does_not_alert_without_drift() -> None:
    """Issue #20 case 8: 98 % missing on both sides alerted in 99.3 % of 300 windows before (PSI median 1.21)."""
    rng = np.random.default_rng(8)
    train = rng.normal(size=10_000)
    train[rng.random(10_000) < 0.98] = np.nan
    profile = _profile(train)
    alerts, values = 0, []
    for _ in range(300):
        live = rng.normal(size=2000)
        live[rng.random(2000) < 0.98] = np.nan
        drift = _drift(profile, live)
        values.append(drift.psi)
        alerts += drift.psi > 0.25 and drift.rows >= 500
    assert alerts == 0
    assert np.median(values) < 0.03


def _null_false_alarms(shares: np.ndarray, seed: int, windows: int = 300) -> float:
    """Share of windows with p < 0.05 when reference (1,000 rows) and window (2,000) come from one population."""
    rng = np.random.default_rng(seed)
    names = np.array([f"k{index}" for index in range(shares.size)], dtype=object)
    hits = 0
    for _ in range(windows):
        reference = rng.choice(names, 1000, p=shares)
        profile = build_profile(reference[:, None], feature_names=["c"], categorical=["c"])
        live = rng.choice(names, 2000, p=shares)
        hits += compare(profile, {"c": live}, live.size).features[0].chi2_pvalue < 0.05
    return hits / windows


@pytest.mark.parametrize(("shares", "before"), [
    (np.full(10, 0.1), 0.770),
    ((1 / np.arange(1, 51)) / (1 / np.arange(1, 51)).sum(), 1.000),
], ids=["10-uniform", "50-zipf"])
def test_the_categorical_test_keeps_its_false_alarm_rate_under_no_drift(shares: np.ndarray, before: float) -> None:
    """Issue #20 case 9: the goodness-of-fit test took the reference shares as exact (rates in `before`)."""
    assert _null_false_alarms(shares, seed=9) <= 0.07
