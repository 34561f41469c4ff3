"""Paired resampling: the bootstrap of the metric difference and the paired permutation test.

Rows whose metric inputs are identical are interchangeable, so when a holdout
has few distinct rows (accuracy has at most four: each model right or wrong)
drawing n rows with replacement is exactly a multinomial draw over the distinct
rows. That costs O(distinct rows) per resample instead of O(n) and gives the same
distribution as resampling row indices. Otherwise row indices are drawn, a few
resamples at a time, so no chunk ever holds more than CHUNK_CELLS weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipway.gate.metrics import PairedRows

CHUNK_CELLS = 1 << 22  # weights held at once: 32 MiB of float64, whatever n and B are
# Past n / 8 distinct rows, a multinomial over them (one binomial draw each)
# costs more than drawing n row indices.
_GROUPING_RATIO = 8


@dataclass(frozen=True)
class Groups:
    """Distinct metric-input rows and how often each occurs in the holdout."""

    rows: np.ndarray
    counts: np.ndarray
    collapsed: bool

    @property
    def total(self) -> int:
        """Number of holdout rows the groups stand for."""
        return int(self.counts.sum())


def group_rows(rows: np.ndarray) -> Groups:
    """Collapse identical rows when there are few enough of them to make resampling cheaper."""
    n = rows.shape[0]
    limit = max(1, n // _GROUPING_RATIO)
    codes = np.zeros(n, dtype=np.int64)
    code_space = 1
    for column in rows.T:
        distinct, inverse = np.unique(column, return_inverse=True)
        if distinct.shape[0] > limit:
            return Groups(rows, np.ones(n, dtype=np.int64), collapsed=False)
        if code_space * distinct.shape[0] >= 2**62:
            # Re-number before the mixed-radix code can overflow int64.
            used, codes = np.unique(codes, return_inverse=True)
            codes, code_space = codes.reshape(-1), used.shape[0]
        codes = codes * distinct.shape[0] + inverse.reshape(-1)
        code_space *= distinct.shape[0]
    _, first, counts = np.unique(codes, return_index=True, return_counts=True)
    if first.shape[0] > limit:
        return Groups(rows, np.ones(n, dtype=np.int64), collapsed=False)
    return Groups(rows[first], counts.astype(np.int64), collapsed=True)


def improvement(candidate: np.ndarray, baseline: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """How much better the candidate is than the baseline, in metric units (positive is better)."""
    return candidate - baseline if higher_is_better else baseline - candidate


def point_improvement(paired: PairedRows, groups: Groups) -> tuple[float, float, float]:
    """The candidate's and baseline's metric on the whole holdout, and the improvement."""
    evaluate = paired.make_evaluator(groups.rows)
    candidate, baseline = evaluate(groups.counts[None, :].astype(np.float64))
    gain = improvement(candidate, baseline, paired.metric.higher_is_better)
    return float(candidate[0]), float(baseline[0]), float(gain[0])


def bootstrap_improvements(paired: PairedRows, groups: Groups, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The improvement in each of `resamples` paired bootstrap resamples (rows drawn with replacement)."""
    evaluate = paired.make_evaluator(groups.rows)
    n, width = groups.total, groups.rows.shape[0]
    chunk = max(1, CHUNK_CELLS // width)
    probabilities = groups.counts / n
    index_type = np.uint32 if n < 2**32 else np.int64
    out = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        if groups.collapsed:
            weights = rng.multinomial(n, probabilities, size=size).astype(np.float64)
        else:
            indices = rng.integers(0, n, size=(size, n), dtype=index_type)
            weights = np.empty((size, n), dtype=np.float64)
            for row in range(size):
                weights[row] = np.bincount(indices[row], minlength=n)
        candidate, baseline = evaluate(weights)
        out[start : start + size] = improvement(candidate, baseline, paired.metric.higher_is_better)
    return out


def permutation_improvements(
    paired: PairedRows, groups: Groups, permutations: int, rng: np.random.Generator
) -> np.ndarray:
    """The improvement under the null: each row's candidate and baseline swapped with probability 1/2."""
    swapped = groups.rows[:, list(paired.swap)]
    evaluate = paired.make_evaluator(np.vstack([groups.rows, swapped]))
    width = groups.rows.shape[0]
    chunk = max(1, CHUNK_CELLS // (2 * width))
    out = np.empty(permutations, dtype=np.float64)
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        if groups.collapsed:
            flipped = rng.binomial(groups.counts, 0.5, size=(size, width)).astype(np.float64)
        else:
            # Eight fair coin flips per random byte.
            packed = np.frombuffer(rng.bytes(size * ((width + 7) // 8)), dtype=np.uint8)
            flipped = np.unpackbits(packed.reshape(size, -1), axis=1)[:, :width].astype(np.float64)
        kept = groups.counts[None, :] - flipped
        candidate, baseline = evaluate(np.hstack([kept, flipped]))
        out[start : start + size] = improvement(candidate, baseline, paired.metric.higher_is_better)
    return out


def permutation_p_value(null: np.ndarray, observed: float) -> float:
    """Two-sided Monte Carlo p-value, counting the observed arrangement as one of the permutations."""
    valid = null[np.isfinite(null)]
    tolerance = 1e-12 * max(1.0, abs(observed))
    extreme = int(np.count_nonzero(np.abs(valid) >= abs(observed) - tolerance))
    return (extreme + 1) / (valid.shape[0] + 1)
