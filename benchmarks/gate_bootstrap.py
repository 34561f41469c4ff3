"""Gate bootstrap speed: 1,000,000 holdout rows, 2,000 paired resamples, against scipy.stats.bootstrap.

Run: PYTHONPATH=src python benchmarks/gate_bootstrap.py [--scipy-full] [--rows N] [--resamples B]

For each metric shipway is timed from the raw columns (per-row table, grouping,
choice of method, all resamples) and prints the method it chose. scipy is given
the per-row values ready made (losses, errors, right/wrong; labels and scores for
ROC AUC) and a vectorised statistic, with paired=True. scipy draws n row indices
per resample, so at full size it runs for minutes here; by default it is timed
on fewer resamples of the same 1,000,000 rows and scaled linearly in the
resample count (its cost per resample is constant), and the output says so.
--scipy-full times all of them. The permutation test (1,000 permutations, as the
gate runs by default) is timed too, scaled the same way where it is slow.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from shipway.gate.data import GateData
from shipway.gate.metrics import prepare
from shipway.gate.resampling import (
    bootstrap_improvements,
    group_rows,
    permutation_improvements,
    plan,
)

Statistic = Callable[..., np.ndarray]


def _holdout(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    candidate_score = np.clip(labels * 0.30 + rng.random(rows) * 0.70, 0.0, 1.0)
    baseline_score = np.clip(labels * 0.28 + rng.random(rows) * 0.72, 0.0, 1.0)
    target = rng.normal(size=rows)
    return {
        "labels": labels,
        "candidate_label": (candidate_score >= 0.5).astype(np.int64),
        "baseline_label": (baseline_score >= 0.5).astype(np.int64),
        "candidate_score": candidate_score,
        "baseline_score": baseline_score,
        "target": target,
        # Student-t errors: heavy tails, the hard case for the stratified normal path.
        "candidate_value": target + rng.standard_t(4, rows),
        "baseline_value": target + 1.02 * rng.standard_t(4, rows),
    }


# metric -> (label column, prediction suffix)
_INPUTS = {
    "accuracy": ("labels", "label"),
    "log_loss": ("labels", "score"),
    "roc_auc": ("labels", "score"),
    "rmse": ("target", "value"),
    "mae": ("target", "value"),
}


def _data(columns: dict[str, np.ndarray], metric: str) -> GateData:
    label, suffix = _INPUTS[metric]
    return GateData(
        "benchmark",
        columns[label],
        columns[f"candidate_{suffix}"],
        columns[f"baseline_{suffix}"],
        "labels",
        "candidate",
        "baseline",
    )


def _shipway(columns: dict[str, np.ndarray], metric: str, resamples: int) -> tuple[float, str, np.ndarray, object]:
    data = _data(columns, metric)
    started = time.perf_counter()
    paired = prepare(data, metric)
    chosen = plan(paired, group_rows(paired.rows))
    distribution = bootstrap_improvements(paired, chosen, resamples, np.random.default_rng(0))
    return time.perf_counter() - started, chosen.method, distribution, (paired, chosen)


def _auc(labels: np.ndarray, scores: np.ndarray, axis: int) -> np.ndarray:
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=axis)
    positive = labels > 0.5
    positives = positive.sum(axis=axis)
    negatives = labels.shape[axis] - positives
    rank_sum = np.where(positive, ranks, 0.0).sum(axis=axis)
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def _scipy_inputs(columns: dict[str, np.ndarray], metric: str) -> tuple[tuple[np.ndarray, ...], Statistic]:
    """The per-row arrays scipy resamples, and the improvement as a vectorised statistic of them."""
    if metric == "roc_auc":
        samples = (columns["labels"].astype(np.float64), columns["candidate_score"], columns["baseline_score"])
        return samples, lambda y, c, b, axis: _auc(y, c, axis) - _auc(y, b, axis)
    if metric == "accuracy":
        samples = tuple(
            (columns[f"{model}_label"] == columns["labels"]).astype(np.float64) for model in ("candidate", "baseline")
        )
        return samples, lambda c, b, axis: c.mean(axis=axis) - b.mean(axis=axis)
    if metric == "log_loss":
        labels = columns["labels"]
        samples = tuple(
            -np.log(np.clip(np.where(labels == 1, columns[f"{m}_score"], 1 - columns[f"{m}_score"]), 1e-15, 1.0))
            for m in ("candidate", "baseline")
        )
        return samples, lambda c, b, axis: b.mean(axis=axis) - c.mean(axis=axis)
    errors = tuple(columns[f"{m}_value"] - columns["target"] for m in ("candidate", "baseline"))
    if metric == "rmse":
        samples = tuple(e * e for e in errors)
        return samples, lambda c, b, axis: np.sqrt(b.mean(axis=axis)) - np.sqrt(c.mean(axis=axis))
    return tuple(np.abs(e) for e in errors), lambda c, b, axis: b.mean(axis=axis) - c.mean(axis=axis)


def _scipy(columns: dict[str, np.ndarray], metric: str, resamples: int) -> tuple[float, tuple[float, float]]:
    from scipy import stats

    samples, statistic = _scipy_inputs(columns, metric)
    started = time.perf_counter()
    result = stats.bootstrap(
        samples,
        statistic,
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


def _label(scale: float, measured_on: int) -> str:
    return "measured" if scale == 1 else f"EXTRAPOLATED from {measured_on} x {scale:g}"


def main() -> None:
    """Time shipway's paired bootstrap and scipy's on the same holdout, per metric, and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--scipy-resamples", type=int, default=50, help="resamples scipy is timed on (scaled up)")
    parser.add_argument("--scipy-auc-resamples", type=int, default=10, help="the same for ROC AUC, slower per resample")
    parser.add_argument("--scipy-full", action="store_true", help="time scipy on all resamples")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument(
        "--slow-permutations", type=int, default=10, help="permutations timed on the slow path (scaled up)"
    )
    parser.add_argument("--metrics", default=",".join(_INPUTS), help="comma-separated subset")
    arguments = parser.parse_args()
    columns = _holdout(arguments.rows, seed=7)
    resamples = arguments.resamples
    print(f"holdout: {arguments.rows:,} rows, {resamples:,} paired resamples, target < 5 s per metric")
    summary = []
    for metric in arguments.metrics.split(","):
        seconds, method, distribution, (paired, chosen) = _shipway(columns, metric, resamples)
        low, high = np.quantile(distribution, [0.025, 0.975])
        verdict = "meets" if seconds < 5 else "MISSES"
        print(f"\n{metric}: shipway {seconds:.2f} s ({method}; {verdict} 5 s)  95% interval [{low:.5f}, {high:.5f}]")

        wanted = arguments.scipy_auc_resamples if metric == "roc_auc" else arguments.scipy_resamples
        scipy_resamples = resamples if arguments.scipy_full else min(wanted, resamples)
        scipy_seconds, (scipy_low, scipy_high) = _scipy(columns, metric, scipy_resamples)
        scale = resamples / scipy_resamples
        scipy_total = scipy_seconds * scale
        print(
            f"  scipy.stats.bootstrap paired: {scipy_seconds:.2f} s for {scipy_resamples} resamples; "
            f"{scipy_total:.1f} s for {resamples} ({_label(scale, scipy_resamples)}); "
            f"interval [{scipy_low:.5f}, {scipy_high:.5f}] (from {scipy_resamples} resamples)"
        )
        ratio = scipy_total / seconds
        print(f"  ratio scipy / shipway: {ratio:,.0f}x")

        perm_method = chosen.permutation_method
        fast = perm_method != "random-swaps"
        timed = arguments.permutations if fast else min(arguments.slow_permutations, arguments.permutations)
        started = time.perf_counter()
        permutation_improvements(paired, chosen, timed, np.random.default_rng(1))
        perm_seconds = time.perf_counter() - started
        perm_scale = arguments.permutations / timed
        print(
            f"  permutation test ({perm_method}): {perm_seconds * perm_scale:.2f} s for {arguments.permutations} "
            f"permutations ({_label(perm_scale, timed)})"
        )
        summary.append((metric, method, seconds, scipy_total, ratio, scale, perm_seconds * perm_scale, perm_scale))

    print(f"\nmetric     method              shipway s  scipy s ({resamples:,})   ratio  permutations s")
    for metric, method, seconds, scipy_total, ratio, scale, perm, perm_scale in summary:
        scipy_note = "" if scale == 1 else "*"
        perm_note = "" if perm_scale == 1 else "*"
        print(
            f"{metric:10s} {method:19s} {seconds:9.2f}  {scipy_total:14.1f}{scipy_note:1s} "
            f"{ratio:7,.0f}x  {perm:13.2f}{perm_note}"
        )
    print("* extrapolated linearly from fewer resamples / permutations (see above)")


if __name__ == "__main__":
    main()
