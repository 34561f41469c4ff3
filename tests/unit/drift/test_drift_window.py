"""Sliding drift windows: they follow the traffic and never grow with it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipway.drift.profile import build_profile
from shipway.drift.window import DriftWindow


def _window(window_rows: int = 1000) -> DriftWindow:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.normal(size=20_000), "y": rng.uniform(size=20_000), "c": rng.choice(["a", "b"], 20_000)})
    return DriftWindow(build_profile(frame, predictions=rng.integers(0, 2, 20_000)), window_rows=window_rows, slices=4)


def _rows(rng: np.random.Generator, count: int, shift: float = 0.0) -> list[list[object]]:
    x = rng.normal(loc=shift, size=count)
    y = rng.uniform(size=count)
    c = rng.choice(["a", "b"], count)
    return [[float(a), float(b), str(z)] for a, b, z in zip(x, y, c, strict=True)]


def test_window_forgets_old_rows_and_recovers_after_drift_ends() -> None:
    rng = np.random.default_rng(8)
    window = _window()
    for _ in range(20):
        window.add_rows(_rows(rng, 50))
    calm = window.statistics()
    assert calm.rows <= 1000
    assert calm.max_psi < 0.1
    for _ in range(25):
        window.add_rows(_rows(rng, 50, shift=2.0))
    drifted = window.statistics()
    by_name = {feature.name: feature for feature in drifted.features}
    assert by_name["x"].psi > 1.0
    assert by_name["y"].psi < 0.1
    assert by_name["c"].chi2_pvalue > 0.001
    for _ in range(25):
        window.add_rows(_rows(rng, 50))
    assert window.statistics().max_psi < 0.1


def test_memory_is_fixed_whatever_the_traffic() -> None:
    rng = np.random.default_rng(9)
    window = _window(window_rows=400)
    state = [counts.slices.nbytes for counts in window._block_counts]
    for _ in range(200):
        window.add_rows(_rows(rng, 20))
    assert [counts.slices.nbytes for counts in window._block_counts] == state
    assert 400 <= window.rows <= 400 + 100 + 20


def test_prediction_drift_is_measured_against_the_training_predictions() -> None:
    window = _window()
    window.add_predictions([0, 1] * 200)
    assert window.statistics().prediction.psi < 0.01
    window = _window()
    window.add_predictions([1] * 400)
    assert window.statistics().prediction.psi > 1.0


def test_columns_with_stray_or_missing_values_count_them_missing() -> None:
    window = _window()
    window.add_columns({"x": [0.1, "oops", None, 0.3], "c": ["a", None, "b", "new"]}, rows=4)
    stats = {feature.name: feature for feature in window.statistics().features}
    assert (stats["x"].rows, stats["x"].missing) == (4, 2)
    assert (stats["c"].rows, stats["c"].missing) == (4, 1)
    # A feature the requests did not carry is not observed at all: no rows for its own min-rows guard.
    assert stats["y"].rows == 0
    assert np.isnan(stats["y"].psi)


def test_infinite_values_count_in_the_top_bin_of_every_numeric_feature() -> None:
    rng = np.random.default_rng(3)
    # "wide" has 20 bins, "narrow" 3: the narrow one's bins are padded to the wide one's.
    profile = build_profile(pd.DataFrame({"wide": rng.normal(size=5000), "narrow": rng.integers(0, 3, 5000) * 1.0}))
    window = DriftWindow(profile, window_rows=None, slices=1)
    window.add_columns({"wide": [np.inf] * 10, "narrow": [np.inf] * 10}, rows=10)
    stats = {feature.name: feature for feature in window.statistics().features}
    for name in ("wide", "narrow"):
        # All ten rows sit in the top bin, whose reference share is about a third or a twentieth: the
        # live CDF is 0 below the top cut, so KS equals the reference CDF there.
        feature = profile.features[[f.name for f in profile.features].index(name)]
        assert stats[name].rows == 10
        assert stats[name].ks == pytest.approx(1.0 - feature.proportions[-1]), name
