"""Paired resampling: the bootstrap of the metric difference and the paired permutation test.

Three methods, chosen per holdout (and per slice) and named in the report:

``exact-multinomial``
    Rows whose metric inputs are identical are interchangeable, so when a
    holdout has few distinct rows (accuracy has at most four: each model right
    or wrong) drawing n rows with replacement is exactly a multinomial draw over
    the distinct rows. That costs O(distinct rows) per resample instead of O(n)
    and gives the same distribution as resampling row indices.
``index-resampling``
    Row indices are drawn, a few resamples at a time, so no chunk holds more
    than CHUNK_CELLS weights, or one resample's n when n is larger. Exact, and
    O(n) per resample.
``stratified-normal``
    From STRATIFIED_MIN_ROWS rows on, for metrics that depend on the weights only
    through weighted sums of a few per-row columns (``metrics.Linearized``: log
    loss, MAE, RMSE exactly, ROC AUC to first order). Rows are sorted by their
    influence on the improvement and cut into at most STRATA strata, each narrow
    both in rank and in value, so extreme rows sit in strata of their own. How
    many rows each resample draws from each stratum is drawn exactly (a
    multinomial over the strata); the sum of the rows drawn inside a stratum is
    replaced by a normal with that stratum's mean and covariance times its count,
    exact in the first two moments. Given the counts the strata are independent,
    so one normal per resample with covariance sum_k count_k * cov_k carries all
    of them. What is lost is the within-stratum skewness and higher cumulants
    only: the skewness of a whole sum is kept except its within-stratum share,
    which narrow strata make small whatever n is, while the counts keep the
    between-stratum part exact. tests/unit/gate/test_resampling.py compares the
    quantiles with index resampling, heavy tails included. The permutation test
    uses strata the same way: how many rows of each stratum are swapped is an
    exact binomial, the sum of the swapped rows a normal with the
    without-replacement variance (for ROC AUC on a table of its own, see
    ``metrics``). Below STRATIFIED_MIN_ROWS, or for a metric without such a
    table, rows are swapped one by one (``random-swaps``).

The JSON report names the method in ``bootstrap.method`` (and
``tests.permutation.method``); ``bootstrap.method_detail`` gives the number of
strata and whether the sums are the metric itself or ROC AUC's first-order part.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from shipway.gate.metrics import Linearized, PairedRows

CHUNK_CELLS = 1 << 22  # weights held at once: 32 MiB of float64, whatever B is (a chunk is at least one resample)
# Below this many rows index resampling is exact and takes about a second for
# 2,000 resamples; above it its cost grows as n x B while strata stay at K x B.
STRATIFIED_MIN_ROWS = 50_000
# Strata per holdout: the counts cost about 0.15 s per 1,000 strata for 2,000
# resamples here; 4,096 keeps the whole path, sorting included, under 2 s at
# 1,000,000 rows, and tests/unit/gate checks a quarter of it against exact resampling.
STRATA = 4096
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


@dataclass(frozen=True)
class Strata:
    """Rows cut into strata: each stratum's size, mean and (population) covariance of the linearized columns."""

    linearized: Linearized
    sizes: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @property
    def total(self) -> int:
        """Number of holdout rows the strata stand for."""
        return int(self.sizes.sum())


@dataclass(frozen=True)
class Plan:
    """How a holdout is resampled: the method's name, a line for the report, and what it needs."""

    method: str
    detail: str
    groups: Groups
    strata: Strata | None = None

    @cached_property
    def null_strata(self) -> Strata | None:
        """Strata for the permutation test, built on first use: the bootstrap's own, or the metric's null table's."""
        if self.strata is None:
            return None
        linearized = self.strata.linearized
        if linearized.swap is not None:
            return self.strata
        return None if linearized.null is None else stratify(linearized.null(), STRATA)

    @property
    def permutation_method(self) -> str:
        """The permutation test's method: stratified normal where strata can swap the models, else exact."""
        if self.null_strata is not None:
            return "stratified-normal"
        return "exact-multinomial" if self.groups.collapsed else "random-swaps"


def plan(paired: PairedRows, groups: Groups) -> Plan:
    """Pick the resampling method for these rows: exact multinomial, stratified normal, or index resampling."""
    if groups.collapsed:
        return Plan("exact-multinomial", f"exact multinomial over {groups.rows.shape[0]} distinct rows", groups)
    if groups.total >= STRATIFIED_MIN_ROWS and paired.linearize is not None:
        linearized = paired.linearize(groups.rows)
        if linearized is not None:
            cut = stratify(linearized, STRATA)
            detail = (
                f"{cut.sizes.shape[0]} strata of the per-row influence on the improvement; exact multinomial "
                f"stratum counts, normal within-stratum sums; {linearized.description}"
            )
            return Plan("stratified-normal", detail, groups, cut)
    return Plan("index-resampling", "row indices drawn with replacement", groups)


def _bin_sorted(summary: np.ndarray, bins: int) -> np.ndarray:
    """Bin numbers for sorted values: each bin spans at most 2/bins of the rows and 2/bins of the range."""
    rows = summary.shape[0]
    span = float(summary[-1] - summary[0])
    position = np.arange(rows) / rows
    if span > 0:
        position = position + (summary - summary[0]) / span
    return np.minimum((position * (bins / 2.0)).astype(np.int64), bins - 1)


def stratify(linearized: Linearized, strata: int) -> Strata:
    """Cut the rows into at most `strata` strata, narrow in the influence summary, never across `linearized.strata`."""
    summary = linearized.summary
    rows = summary.shape[0]
    order = np.argsort(summary)
    if linearized.strata is None:
        class_sizes = np.array([rows])
    else:
        order = order[np.argsort(linearized.strata[order], kind="stable")]
        _, class_sizes = np.unique(linearized.strata, return_counts=True)
    # Each class gets strata half for its rows and half for its share of the influence's spread
    # (ROC AUC's rarer class carries more of the variance per row).
    starts = np.r_[0, np.cumsum(class_sizes)]
    spread = np.array([summary[order[a:b]].var() * (b - a) for a, b in zip(starts[:-1], starts[1:], strict=True)])
    share = class_sizes / rows
    if spread.sum() > 0:
        share = 0.5 * share + 0.5 * spread / spread.sum()
    labels = np.empty(rows, dtype=np.int64)
    offset = 0
    for start, stop, fraction in zip(starts[:-1], starts[1:], share, strict=True):
        bins = max(1, int(round(strata * fraction)))
        labels[start:stop] = offset + _bin_sorted(summary[order[start:stop]], bins)
        offset += bins
    # Bin numbers rise along `order`; renumber them 0, 1, 2... skipping empty bins.
    labels = np.r_[0, np.cumsum(labels[1:] != labels[:-1])]
    values = linearized.values[order]
    sizes = np.bincount(labels)
    width = values.shape[1]
    means = np.column_stack([np.bincount(labels, weights=values[:, j]) for j in range(width)]) / sizes[:, None]
    centred = values - means[labels]
    covariances = np.empty((sizes.shape[0], width, width))
    for i in range(width):
        for j in range(i, width):
            covariances[:, i, j] = covariances[:, j, i] = np.bincount(labels, weights=centred[:, i] * centred[:, j])
    covariances /= sizes[:, None, None]
    return Strata(linearized, sizes, means, covariances.reshape(sizes.shape[0], width * width))


def _normal_sums(covariances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One normal vector per row of `covariances` (b x d*d), with that covariance."""
    size, cells = covariances.shape
    width = int(round(cells**0.5))
    eigenvalues, eigenvectors = np.linalg.eigh(covariances.reshape(size, width, width))
    scaled = np.sqrt(np.maximum(eigenvalues, 0.0)) * rng.standard_normal((size, width))
    return np.einsum("bij,bj->bi", eigenvectors, scaled)


def _stratified_bootstrap(
    strata: Strata, resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    n = strata.total
    probabilities = strata.sizes / n
    chunk = max(1, CHUNK_CELLS // strata.sizes.shape[0])
    candidate = np.empty(resamples)
    baseline = np.empty(resamples)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        counts = rng.multinomial(n, probabilities, size=size).astype(np.float64)
        totals = counts @ strata.means + _normal_sums(counts @ strata.covariances, rng)
        candidate[start : start + size], baseline[start : start + size] = strata.linearized.finish(totals, n)
    return candidate, baseline


def _stratified_permutation(
    strata: Strata, permutations: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    swap = list(strata.linearized.swap or ())
    n = strata.total
    whole = strata.sizes @ strata.means
    spare = np.maximum(strata.sizes - 1, 1).astype(np.float64)
    chunk = max(1, CHUNK_CELLS // strata.sizes.shape[0])
    candidate = np.empty(permutations)
    baseline = np.empty(permutations)
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        flipped = rng.binomial(strata.sizes, 0.5, size=(size, strata.sizes.shape[0])).astype(np.float64)
        # A stratum's swapped rows are drawn without replacement: finite-population variance.
        spread = flipped * (strata.sizes - flipped) / spare
        moved = flipped @ strata.means + _normal_sums(spread @ strata.covariances, rng)
        totals = whole[None, :] - moved + moved[:, swap]
        candidate[start : start + size], baseline[start : start + size] = strata.linearized.finish(totals, n)
    return candidate, baseline


def improvement(candidate: np.ndarray, baseline: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """How much better the candidate is than the baseline, in metric units (positive is better)."""
    return candidate - baseline if higher_is_better else baseline - candidate


def point_improvement(paired: PairedRows, groups: Groups) -> tuple[float, float, float]:
    """The candidate's and baseline's metric on the whole holdout, and the improvement."""
    evaluate = paired.make_evaluator(groups.rows)
    candidate, baseline = evaluate(groups.counts[None, :].astype(np.float64))
    gain = improvement(candidate, baseline, paired.metric.higher_is_better)
    return float(candidate[0]), float(baseline[0]), float(gain[0])


def bootstrap_improvements(
    paired: PairedRows, groups: Groups | Plan, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """The improvement in each of `resamples` paired bootstrap resamples (rows drawn with replacement)."""
    chosen = groups if isinstance(groups, Plan) else plan(paired, groups)
    higher_is_better = paired.metric.higher_is_better
    if chosen.strata is not None:
        return improvement(*_stratified_bootstrap(chosen.strata, resamples, rng), higher_is_better)
    groups = chosen.groups
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
        out[start : start + size] = improvement(candidate, baseline, higher_is_better)
    return out


def permutation_improvements(
    paired: PairedRows, groups: Groups | Plan, permutations: int, rng: np.random.Generator
) -> np.ndarray:
    """The improvement under the null: each row's candidate and baseline swapped with probability 1/2."""
    chosen = groups if isinstance(groups, Plan) else plan(paired, groups)
    if chosen.null_strata is not None:
        candidate, baseline = _stratified_permutation(chosen.null_strata, permutations, rng)
        return improvement(candidate, baseline, paired.metric.higher_is_better)
    groups = chosen.groups
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
