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


def test_categorical_chi_square_matches_scipy_and_flags_new_categories() -> None:
    train = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200, dtype=object)
    profile = build_profile(train[:, None], feature_names=["c"], categorical=["c"])
    live = ["a"] * 45 + ["b"] * 35 + ["c"] * 20
    drift = compare(profile, {"c": live}, len(live)).features[0]
    expected = scipy_stats.chisquare([45, 35, 20], f_exp=[50, 30, 20]).pvalue
    assert drift.chi2_pvalue == pytest.approx(expected, rel=0.05)
    assert np.isnan(drift.ks)
    unseen = ["z"] * 50 + ["a"] * 50
    drift = compare(profile, {"c": unseen}, len(unseen)).features[0]
    assert drift.chi2_pvalue < 1e-6
    assert drift.psi > 1.0


def test_missing_values_are_skipped_not_counted() -> None:
    profile = _profile(np.random.default_rng(6).normal(size=10_000))
    drift = _drift(profile, np.array([np.nan, 0.1, np.nan, -0.2]))
    assert drift.rows == 2
