"""The observer's drift state: only the features it is told to watch."""

from __future__ import annotations

import json

import pytest

from shipway.errors import ShipwayError
from shipway.sidecar.metrics import SidecarMetrics
from shipway.sidecar.observer import Observer, ObserverSettings
from sidecar_support import reference

# Rows in the profile's order; f1 is far from its standard-normal reference, the rest are not.
ROWS = [[0.1 * (index % 7) - 0.3, 5.0 + index % 3, -0.2, 0.4] for index in range(40)]
OIP = json.dumps({"inputs": [{"name": "predict", "shape": [40, 4], "datatype": "FP64", "data": ROWS}]}).encode()
RECORDS = json.dumps({"instances": [dict(zip(("f0", "f1", "f2", "f3"), row, strict=True)) for row in ROWS]}).encode()


def _observe(features: tuple[str, ...], body: bytes) -> Observer:
    observer = Observer(SidecarMetrics("m", "v1"), reference(), ObserverSettings(flush_rows=1_000), features)
    observer.observe(None, observer.parse(body), 200, None)
    return observer


@pytest.mark.parametrize("body", [OIP, RECORDS], ids=["oip-tensor", "records"])
def test_watched_features_drift_exactly_as_with_every_feature_watched(body: bytes) -> None:
    watching_all = _observe((), body)
    watching_one = _observe(("f1",), body)
    # Unwatched columns are not even buffered until the flush.
    assert set(watching_one._columns) == {"f1"}
    assert watching_one.window is not None and watching_one.window.profile.feature_names == ("f1",)
    # Positional requests are still read in the whole profile's column order.
    assert watching_one.feature_names == ("f0", "f1", "f2", "f3")
    assert watching_all.window is not None
    watching_all.refresh()
    watching_one.refresh()
    every = {feature.name: feature for feature in watching_all.window.statistics().features}
    (only,) = watching_one.window.statistics().features
    # chi2_pvalue is NaN for a numeric feature, and NaN never equals itself.
    assert only.ks == every["f1"].ks and only.ks > 0.5
    assert (only.name, only.rows, only.psi, only.js) == ("f1", 40, every["f1"].psi, every["f1"].js)
    assert only.psi > 1
    psi = {sample.labels["feature"]: sample.value
           for metric in watching_one.metrics.registry.collect() if metric.name == "shipway_model_feature_drift_psi"
           for sample in metric.samples}
    assert psi == {"f1": only.psi}


def test_features_the_profile_lacks_are_refused() -> None:
    with pytest.raises(ShipwayError, match="feature 'f9' not in the reference profile, which has: f0, f1, f2, f3"):
        Observer(SidecarMetrics("m", "v1"), reference(), None, ("f1", "f9"))
    with pytest.raises(ValueError, match="need a reference profile"):
        Observer(SidecarMetrics("m", "v1"), None, None, ("f1",))
