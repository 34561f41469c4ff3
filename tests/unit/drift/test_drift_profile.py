"""Reference profiles: quantile bins, category shares, JSON round trip."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from shipway.drift.profile import (
    CategoricalFeature,
    NumericFeature,
    ReferenceProfile,
    build_profile,
    numeric_feature,
)
from shipway.errors import ShipwayError


def test_numeric_bins_hold_equal_shares_of_training_data() -> None:
    values = np.random.default_rng(1).normal(size=50_000)
    feature = numeric_feature("x", values, bins=10)
    assert feature.bins == 10
    assert list(feature.cuts) == sorted(feature.cuts)
    np.testing.assert_allclose(feature.proportions, 0.1, atol=1e-3)
    assert feature.rows == 50_000


def test_ties_collapse_bins_instead_of_leaving_empty_ones() -> None:
    feature = numeric_feature("flag", np.array([0.0] * 700 + [1.0] * 300), bins=10)
    # The top level gets a bin of its own, so a value above 1.0 is not counted as a 1.0.
    assert feature.cuts == (0.0, 1.0, np.nextafter(1.0, 2.0))
    assert feature.proportions == (0.0, 0.7, 0.3, 0.0)


def test_frame_columns_become_numeric_or_categorical_by_dtype() -> None:
    frame = pd.DataFrame({"age": np.arange(100.0), "city": ["a"] * 60 + ["b"] * 30 + ["c"] * 10})
    profile = build_profile(frame, predictions=np.array([0, 1] * 50))
    age, city = profile.features
    assert isinstance(age, NumericFeature)
    assert isinstance(city, CategoricalFeature)
    assert city.categories == ("a", "b", "c")
    assert city.proportions == pytest.approx((0.6, 0.3, 0.1, 0.0))
    assert isinstance(profile.prediction, CategoricalFeature)
    assert profile.prediction.categories == ("0", "1")


def test_numpy_array_with_named_categorical_column() -> None:
    data = np.column_stack([np.random.default_rng(2).normal(size=200), np.repeat([1, 2], 100)])
    profile = build_profile(data, feature_names=["x", "kind"], categorical=["kind"])
    assert profile.feature_names == ("x", "kind")
    assert isinstance(profile.features[1], CategoricalFeature)
    assert profile.features[1].categories == ("1.0", "2.0")


def test_round_trip_through_json(tmp_path) -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 500), "colour": ["red", "blue"] * 250})
    profile = build_profile(frame, predictions=np.linspace(0, 1, 500))
    path = profile.save(tmp_path / "profile.json")
    assert ReferenceProfile.load(path) == profile
    # Small enough to sit beside a model artifact.
    assert path.stat().st_size < 4_000


def test_a_save_that_fails_leaves_the_previous_profile_whole(tmp_path, monkeypatch) -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 500)})
    old = build_profile(frame)
    path = old.save(tmp_path / "profile.json")
    new = build_profile(frame * 2)

    def interrupted(*_args: object) -> None:
        raise OSError("disk full")

    # The write is interrupted where a crash or a full disk would stop it: before the new file is in place.
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    assert ReferenceProfile.load(path) == old
    assert [p.name for p in tmp_path.iterdir()] == ["profile.json"]


def test_a_constant_feature_has_bins_open_on_both_sides() -> None:
    """Issue #20 case 7: all training values 5.0; before, 100.0 shared 5.0's bin and read PSI 0, KS 0, JS 0."""
    feature = numeric_feature("x", np.full(1000, 5.0))
    assert feature.cuts == (5.0, np.nextafter(5.0, 6.0))
    assert feature.counts == (0, 1000, 0)


def test_missing_values_are_counted_once_in_a_bucket_of_their_own() -> None:
    """Issue #20 case 6: NaN became the category "nan" (None "None") in training, while live nulls were skipped."""
    frame = pd.DataFrame({"city": ["a", None, "b", np.nan, "a", pd.NA], "x": [1.0, np.nan, 2.0, 3.0, None, 4.0]})
    city, x = build_profile(frame, categorical=["city"]).features
    assert city.categories == ("a", "b") and city.counts == (2, 1, 0) and city.missing == 3
    assert "nan" not in city.categories and "None" not in city.categories
    assert x.missing == 2 and sum(x.counts) == 4 and x.rows == 6
    assert x.shares[-1] == pytest.approx(2 / 6)


def test_an_old_profile_is_refused_naming_how_to_regenerate_it(tmp_path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({"format": "shipway.drift/v1", "features": [
        {"name": "x", "kind": "numeric", "cuts": [0.0], "proportions": [0.5, 0.5], "rows": 10}]}))
    with pytest.raises(ShipwayError) as error:
        ReferenceProfile.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: drift reference profile of the old format 'shipway.drift/v1'")
    assert "shipway drift profile TRAINING_FILE --output PROFILE" in message


def test_load_rejects_other_documents_with_a_clear_message(tmp_path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ShipwayError, match="not a drift reference profile"):
        ReferenceProfile.load(path)
    with pytest.raises(ShipwayError, match="not found"):
        ReferenceProfile.load(tmp_path / "missing.json")


def test_unknown_categorical_column_is_an_error() -> None:
    with pytest.raises(ShipwayError, match=r"\['nope'\]"):
        build_profile(np.zeros((3, 2)), categorical=["nope"])


def test_a_subset_keeps_the_named_features_in_profile_order_and_the_predictions() -> None:
    profile = build_profile(np.random.default_rng(2).normal(size=(200, 3)), ["a", "b", "c"],
                            predictions=np.array([0, 1] * 100))
    subset = profile.select(["c", "a", "c"])
    assert subset.feature_names == ("a", "c")
    assert subset.features == (profile.features[0], profile.features[2])
    assert subset.prediction == profile.prediction


def test_a_subset_naming_a_feature_the_profile_lacks_is_refused_with_its_features() -> None:
    profile = build_profile(np.random.default_rng(2).normal(size=(200, 3)), ["a", "b", "c"])
    with pytest.raises(ShipwayError) as error:
        profile.select(["a", "ag"])
    assert str(error.value) == "feature 'ag' not in the reference profile, which has: a, b, c"
