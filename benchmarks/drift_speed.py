"""PSI and KS for 50 features x 1,000,000 live rows against a reference profile (target: under 3 s).

The comparison point is Evidently's data-drift report on the same data when
`evidently` imports here; otherwise `scipy.stats.ks_2samp` per feature against
the training sample (exact KS, no PSI), which is what Evidently runs for
numeric columns of this size anyway.

    python benchmarks/drift_speed.py [--rows 1000000] [--features 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    """Build a profile, time the windowed statistics, time the reference tool, print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--training-rows", type=int, default=100_000)
    options = parser.parse_args()

    from shipway.drift.profile import build_profile
    from shipway.drift.window import compare

    rng = np.random.default_rng(0)
    train = rng.normal(size=(options.training_rows, options.features))
    # Column-major, as a column store (parquet, a DataFrame) hands columns over.
    live = np.asfortranarray(rng.normal(size=(options.rows, options.features)))
    live[:, : options.features // 5] += 0.5
    names = [f"f{index}" for index in range(options.features)]

    started = time.perf_counter()
    profile = build_profile(train, feature_names=names)
    profile_seconds = time.perf_counter() - started

    started = time.perf_counter()
    result = compare(profile, {name: live[:, index] for index, name in enumerate(names)}, options.rows)
    shipway_seconds = time.perf_counter() - started
    drifted = sum(feature.psi > 0.1 for feature in result.features)

    try:
        reference_name, reference_seconds = "evidently DataDriftPreset", _evidently(train, live, names)
    except ImportError as error:
        print(f"evidently unavailable ({error.__class__.__name__}: {error}); comparing with scipy ks_2samp")
        reference_name, reference_seconds = "scipy.stats.ks_2samp per feature", _scipy(train, live)

    print(f"{options.features} features x {options.rows:,} rows (reference: {options.training_rows:,} training rows)")
    print(f"profile build: {profile_seconds:.2f} s")
    print(f"shipway PSI+KS+JS: {shipway_seconds:.2f} s ({drifted} features with PSI > 0.1)"
          f" (target < 3 s: {'PASS' if shipway_seconds < 3 else 'FAIL'})")
    print(f"{reference_name}: {reference_seconds:.2f} s; ratio {reference_seconds / shipway_seconds:.1f}x slower")


def _scipy(train: np.ndarray, live: np.ndarray) -> float:
    from scipy import stats

    started = time.perf_counter()
    for index in range(live.shape[1]):
        stats.ks_2samp(train[:, index], live[:, index])
    return time.perf_counter() - started


def _evidently(train: np.ndarray, live: np.ndarray, names: list[str]) -> float:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference, current = pd.DataFrame(train, columns=names), pd.DataFrame(live, columns=names)
    started = time.perf_counter()
    Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
