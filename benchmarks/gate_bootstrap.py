"""Gate bootstrap speed: 1,000,000 holdout rows, 2,000 paired resamples, against scipy.stats.bootstrap.

Run: PYTHONPATH=src python benchmarks/gate_bootstrap.py [--scipy-full] [--rows N] [--resamples B]

scipy's paired bootstrap draws n row indices per resample, so at full size it
runs for minutes here; by default it is timed on fewer resamples of the same
1,000,000 rows and scaled linearly in the resample count (its cost per resample
is constant), and the output says so. --scipy-full times all of them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _holdout(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    candidate_score = np.clip(labels * 0.30 + rng.random(rows) * 0.70, 0.0, 1.0)
    baseline_score = np.clip(labels * 0.28 + rng.random(rows) * 0.72, 0.0, 1.0)
    return {
        "labels": labels,
        "candidate_label": (candidate_score >= 0.5).astype(np.int64),
        "baseline_label": (baseline_score >= 0.5).astype(np.int64),
        "candidate_score": candidate_score,
        "baseline_score": baseline_score,
    }


def _shipway(columns: dict[str, np.ndarray], metric: str, prediction: str, resamples: int) -> tuple[float, np.ndarray]:
    from shipway.gate.data import GateData
    from shipway.gate.metrics import prepare
    from shipway.gate.resampling import bootstrap_improvements, group_rows

    data = GateData(
        "benchmark",
        columns["labels"],
        columns[f"candidate_{prediction}"],
        columns[f"baseline_{prediction}"],
        "labels",
        "candidate",
        "baseline",
    )
    started = time.perf_counter()
    paired = prepare(data, metric)
    distribution = bootstrap_improvements(paired, group_rows(paired.rows), resamples, np.random.default_rng(0))
    return time.perf_counter() - started, distribution


def _scipy_accuracy(columns: dict[str, np.ndarray], resamples: int) -> tuple[float, tuple[float, float]]:
    from scipy import stats

    candidate_right = (columns["candidate_label"] == columns["labels"]).astype(np.float64)
    baseline_right = (columns["baseline_label"] == columns["labels"]).astype(np.float64)

    def difference(candidate: np.ndarray, baseline: np.ndarray, axis: int) -> np.ndarray:
        return candidate.mean(axis=axis) - baseline.mean(axis=axis)

    started = time.perf_counter()
    result = stats.bootstrap(
        (candidate_right, baseline_right),
        difference,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=4,  # bounds scipy's memory at 4 x n indices, like shipway's chunks
        method="percentile",
        confidence_level=0.95,
        random_state=np.random.default_rng(0),
    )
    interval = result.confidence_interval
    return time.perf_counter() - started, (float(interval.low), float(interval.high))


def main() -> None:
    """Time shipway's paired bootstrap and scipy's on the same holdout, and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--scipy-resamples", type=int, default=100, help="resamples scipy is timed on (scaled up)")
    parser.add_argument("--scipy-full", action="store_true", help="time scipy on all resamples")
    parser.add_argument("--index-resamples", type=int, default=100, help="resamples for the row-index path")
    arguments = parser.parse_args()
    columns = _holdout(arguments.rows, seed=7)
    print(f"holdout: {arguments.rows:,} rows, {arguments.resamples:,} paired resamples")

    seconds, distribution = _shipway(columns, "accuracy", "label", arguments.resamples)
    low, high = np.quantile(distribution, [0.025, 0.975])
    print(f"shipway accuracy (exact multinomial path): {seconds:.3f} s  interval [{low:.5f}, {high:.5f}]")
    seconds_f1, _ = _shipway(columns, "f1", "label", arguments.resamples)
    print(f"shipway f1       (exact multinomial path): {seconds_f1:.3f} s")

    scipy_resamples = arguments.resamples if arguments.scipy_full else arguments.scipy_resamples
    scipy_seconds, scipy_interval = _scipy_accuracy(columns, scipy_resamples)
    scale = arguments.resamples / scipy_resamples
    scipy_total = scipy_seconds * scale
    label = "measured" if scale == 1 else f"EXTRAPOLATED from {scipy_resamples} resamples x {scale:g}"
    print(
        f"scipy.stats.bootstrap paired accuracy: {scipy_seconds:.2f} s for {scipy_resamples} resamples; "
        f"{scipy_total:.1f} s for {arguments.resamples} ({label}); interval [{scipy_interval[0]:.5f}, {scipy_interval[1]:.5f}]"
    )
    print(f"ratio scipy / shipway (accuracy): {scipy_total / seconds:,.0f}x")

    # Continuous per-row values have no few distinct rows to collapse; this is the
    # general row-index path, timed on fewer resamples and scaled the same way.
    index_seconds, _ = _shipway(columns, "log_loss", "score", arguments.index_resamples)
    index_scale = arguments.resamples / arguments.index_resamples
    print(
        f"shipway log_loss (row-index path): {index_seconds:.2f} s for {arguments.index_resamples} resamples; "
        f"{index_seconds * index_scale:.1f} s for {arguments.resamples} "
        f"({'measured' if index_scale == 1 else f'EXTRAPOLATED x {index_scale:g}'}); "
        f"vs scipy per resample: {(scipy_seconds / scipy_resamples) / (index_seconds / arguments.index_resamples):.2f}x"
    )


if __name__ == "__main__":
    main()
