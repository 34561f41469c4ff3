"""Metrics computed for many weighted resamples at once, and turning raw columns into their inputs.

Every metric reads a small per-row table (``rows``, n x m) built once from the
labels and both models' predictions. An evaluator built from that table takes a
weight matrix (b x n: how often each row appears in each of b resamples) and
returns the candidate's and the baseline's metric for every resample. Weights
make the bootstrap (multinomial counts), the permutation test (swapped rows) and
the point estimate (all ones) the same computation.

Metrics whose resampled value depends on the weights only through weighted sums
of a few per-row columns can also describe themselves as a ``Linearized``
table; the resampler then works on strata of rows instead of single rows (see
``resampling``). Mean metrics (log loss, MAE, RMSE) are exact functions of such
sums. ROC AUC is not: its Hoeffding decomposition is an exact sum of first-order
terms (each row's placement value, divided by the resampled class count) and a
degenerate second-order term; the table keeps the first part and drops the
second, whose bootstrap standard deviation is O(1/sqrt(positives x negatives)),
against O(1/sqrt(min(positives, negatives))) for the first. The same holds for
the permutation test of ROC AUC: with each row's two scores swapped at random,
the AUC difference is a sum of independent per-row terms (+/- the row's placement
difference against both models' pooled scores of the other class) plus a
degenerate pairwise term, and the table for the null keeps the first part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shipway.gate.columns import ClassSet, class_set, numbers, probabilities
from shipway.gate.data import GateData
from shipway.gate.errors import GateInputError

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("auto", "binary", "multiclass", "regression")
Evaluator = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Finisher = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]

# Probabilities are clipped before the logarithm, as scikit-learn does, so a
# confident wrong prediction costs a large but finite loss.
_PROBABILITY_EPSILON = 1e-15
# Below this many rows of either class the dropped second-order AUC term is no
# longer negligible next to the first-order one, so AUC is not linearized.
AUC_LINEAR_MIN_CLASS_ROWS = 2000


@dataclass(frozen=True)
class MetricInfo:
    """A metric's name, direction and the tasks it applies to."""

    name: str
    higher_is_better: bool
    tasks: tuple[Task, ...]
    needs_scores: bool


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("accuracy", True, ("binary", "multiclass"), needs_scores=False),
    "f1": MetricInfo("f1", True, ("binary", "multiclass"), needs_scores=False),
    "roc_auc": MetricInfo("roc_auc", True, ("binary",), needs_scores=True),
    "log_loss": MetricInfo("log_loss", False, ("binary", "multiclass"), needs_scores=True),
    "rmse": MetricInfo("rmse", False, ("regression",), needs_scores=False),
    "mae": MetricInfo("mae", False, ("regression",), needs_scores=False),
}


@dataclass(frozen=True)
class Linearized:
    """Per-row columns whose weighted sums give both models' metric, and how to bin the rows.

    `swap` permutes the columns when a row's candidate and baseline are exchanged
    (the permutation test); where no column permutation does that, `null` builds,
    on demand, a second table whose `swap` gives the permutation test's
    improvement instead.
    """

    values: np.ndarray
    summary: np.ndarray
    strata: np.ndarray | None
    finish: Finisher
    swap: tuple[int, ...] | None
    exact: bool
    null: Callable[[], Linearized] | None = None

    @property
    def description(self) -> str:
        """What the sums stand for: the metric itself, or its first-order part."""
        if self.exact:
            return "the metric is a function of per-row column sums"
        return "first-order (Hajek) terms of ROC AUC, second-order term dropped"


@dataclass(frozen=True)
class PairedRows:
    """The per-row metric inputs for both models, and how to evaluate weighted resamples of them."""

    metric: MetricInfo
    task: Task
    rows: np.ndarray
    swap: tuple[int, ...]
    classes: tuple[str, ...]
    make_evaluator: Callable[[np.ndarray], Evaluator]
    linearize: Callable[[np.ndarray], Linearized | None] | None = None
    found: ClassSet | None = None

    def swapped(self) -> np.ndarray:
        """The rows with candidate and baseline exchanged (the permutation test's other arm)."""
        return self.rows[:, list(self.swap)]


def metric_info(name: str) -> MetricInfo:
    """Look a metric up by name, refusing unknown ones with the list of known ones."""
    key = name.strip().lower().replace("-", "_")
    if key not in METRICS:
        raise GateInputError(f"unknown metric {name!r}; use one of {', '.join(METRICS)}")
    return METRICS[key]


def prepare(
    data: GateData,
    metric_name: str,
    task: str = "auto",
    classes: Sequence[str] = (),
    positive_class: str | None = None,
    positive_origin: str = "--positive-class",
) -> PairedRows:
    """Check the columns suit the metric and task, and build the per-row table the gate resamples."""
    metric = metric_info(metric_name)
    if task not in TASKS:
        raise GateInputError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    resolved = _resolve_task(data, metric, task, classes)
    if resolved not in metric.tasks:
        raise GateInputError(
            f"metric {metric.name!r} does not apply to {resolved} tasks; it applies to {', '.join(metric.tasks)}"
        )
    if resolved == "regression":
        return _regression_rows(data, metric)
    return _classification_rows(data, metric, resolved, classes, positive_class, positive_origin)


def _resolve_task(data: GateData, metric: MetricInfo, task: str, classes: Sequence[str]) -> Task:
    if task != "auto":
        return task  # type: ignore[return-value]
    if metric.tasks == ("regression",):
        return "regression"
    widths = {p.shape[1] for p in (data.candidate, data.baseline) if p.ndim == 2}
    if any(w > 2 for w in widths):
        return "multiclass"
    distinct = len(set(classes)) if classes else np.unique(data.labels).shape[0]
    return "binary" if distinct <= 2 else "multiclass"


def _regression_rows(data: GateData, metric: MetricInfo) -> PairedRows:
    labels = numbers(data.source, data.label_column, data.labels)
    candidate = numbers(data.source, data.candidate_column, data.candidate) - labels
    baseline = numbers(data.source, data.baseline_column, data.baseline) - labels
    if metric.name == "rmse":
        rows = np.column_stack([candidate * candidate, baseline * baseline])
        return PairedRows(
            metric, "regression", rows, (1, 0), (), lambda r: _mean_evaluator(r, root=True), _root_mean_linearized
        )
    rows = np.column_stack([np.abs(candidate), np.abs(baseline)])
    return PairedRows(
        metric, "regression", rows, (1, 0), (), lambda r: _mean_evaluator(r, root=False), _mean_linearized
    )


def _classification_rows(
    data: GateData,
    metric: MetricInfo,
    task: Task,
    declared: Sequence[str],
    positive_class: str | None,
    positive_origin: str,
) -> PairedRows:
    if data.labels.ndim != 1:
        raise GateInputError(f"{data.source}: labels column {data.label_column!r} must hold one label per row")
    # Accuracy on predicted labels compares labels only; every other binary use needs the positive class.
    hard = not metric.needs_scores and not any(_is_scores(v) for v in (data.candidate, data.baseline))
    found = class_set(
        data.source, data.label_column, data.labels, declared, positive_class, positive_origin,
        binary=task == "binary", positive_needed=not (hard and metric.name == "accuracy"),
    )
    class_count = len(found.keys)
    if class_count < 2:
        raise GateInputError(
            f"{data.source}: labels column {data.label_column!r} holds a single class ({found.names[0]}); "
            "a classification gate needs at least two classes"
        )
    if task == "binary" and class_count > 2:
        raise GateInputError(
            f"{data.source}: labels column {data.label_column!r} holds {class_count} classes; use --task multiclass"
        )
    label_codes = found.check_labels(data.labels)
    if metric.needs_scores:
        candidate = _scores(data, data.candidate_column, data.candidate, found, task)
        baseline = _scores(data, data.baseline_column, data.baseline, found, task)
        if metric.name == "roc_auc":
            rows = np.column_stack([label_codes == 1, candidate, baseline]).astype(np.float64)
            return PairedRows(metric, task, rows, (0, 2, 1), found.names, _auc_evaluator, _auc_linearized, found)
        rows = np.column_stack([_row_log_loss(candidate, label_codes), _row_log_loss(baseline, label_codes)])
        return PairedRows(
            metric, task, rows, (1, 0), found.names, lambda r: _mean_evaluator(r, root=False), _mean_linearized,
            found,
        )
    candidate_codes = _hard_labels(data, data.candidate_column, data.candidate, found)
    baseline_codes = _hard_labels(data, data.baseline_column, data.baseline, found)
    if metric.name == "accuracy":
        rows = np.column_stack([candidate_codes == label_codes, baseline_codes == label_codes]).astype(np.float64)
        return PairedRows(metric, task, rows, (1, 0), found.names, lambda r: _mean_evaluator(r, root=False),
                          None, found)
    rows = np.column_stack([label_codes, candidate_codes, baseline_codes]).astype(np.float64)
    return PairedRows(metric, task, rows, (0, 2, 1), found.names, lambda r: _f1_evaluator(r, class_count),
                      None, found)


def _is_scores(values: np.ndarray) -> bool:
    """Per-class probabilities, or fractional numbers (binary probabilities cut at 0.5)."""
    if values.ndim == 2:
        return True
    return values.dtype.kind == "f" and bool(np.any(values != np.round(values)))


def _scores(data: GateData, column: str, values: np.ndarray, found: ClassSet, task: Task) -> np.ndarray:
    """Probabilities: the positive class's (binary, n) or every class's in code order (multiclass, n x K)."""
    scores = probabilities(data.source, column, values)
    class_count = len(found.keys)
    if scores.ndim == 2:
        if scores.shape[1] != class_count:
            raise GateInputError(
                f"{data.source}: column {column!r} has {scores.shape[1]} probabilities per row "
                f"but the labels hold {class_count} classes"
            )
        # Per-class columns are in sorted class order; codes put the positive class last in a binary task.
        in_code_order = np.empty_like(scores)
        in_code_order[:, found.sorted_codes] = scores
        return in_code_order[:, 1] if task == "binary" else in_code_order
    if task == "multiclass":
        raise GateInputError(
            f"{data.source}: column {column!r} holds one number per row; a multiclass "
            "probability metric needs one probability per class (an n x K array in npz, a list column in parquet)"
        )
    return scores


def _hard_labels(data: GateData, column: str, values: np.ndarray, found: ClassSet) -> np.ndarray:
    """Class codes of predicted labels; probabilities become labels by argmax (or 0.5 for binary scores)."""
    class_count = len(found.keys)
    if values.ndim == 2:
        scores = probabilities(data.source, column, values)
        if scores.shape[1] != class_count:
            raise GateInputError(
                f"{data.source}: column {column!r} has {scores.shape[1]} probabilities per row "
                f"but the labels hold {class_count} classes"
            )
        return found.sorted_codes[np.argmax(scores, axis=1)]
    if _is_scores(values):
        if class_count != 2:
            # Casting would truncate 1.7 to class 1 and 0.9 to class 0: a silently wrong score.
            raise GateInputError(
                f"{data.source}: column {column!r} holds fractional numbers but the labels hold {class_count} "
                "classes; give predicted class labels, or one probability per class (an n x K array)"
            )
        if found.positive is None:
            raise GateInputError(
                f"{data.source}: column {column!r} holds probabilities; say which class they are for with "
                "--positive-class or model.yaml's gate.positiveClass"
            )
        return (probabilities(data.source, column, values) >= 0.5).astype(np.int64)
    return found.codes(column, values)


def _row_log_loss(scores: np.ndarray, label_codes: np.ndarray) -> np.ndarray:
    if scores.ndim == 2:
        chosen = scores[np.arange(scores.shape[0]), label_codes]
    else:
        chosen = np.where(label_codes == 1, scores, 1.0 - scores)
    return -np.log(np.clip(chosen, _PROBABILITY_EPSILON, 1.0))


def _mean_evaluator(rows: np.ndarray, root: bool) -> Evaluator:
    """Weighted means of the candidate's and baseline's per-row values (accuracy, log loss, MAE, MSE)."""
    values = np.ascontiguousarray(rows[:, :2])

    def evaluate(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        totals = weights @ values
        means = totals / weights.sum(axis=1, keepdims=True)
        if root:
            means = np.sqrt(means)
        return means[:, 0], means[:, 1]

    return evaluate


def _f1_evaluator(rows: np.ndarray, class_count: int) -> Evaluator:
    """F1 of the positive class (binary) or the unweighted mean over classes (multiclass macro F1)."""
    labels = rows[:, 0].astype(np.int64)
    actual = np.eye(class_count)[labels]
    per_model = []
    for column in (1, 2):
        predicted = np.eye(class_count)[rows[:, column].astype(np.int64)]
        per_model.append(np.hstack([actual * predicted, predicted + actual]))

    def evaluate(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = []
        for indicators in per_model:
            sums = weights @ indicators
            true_positive, denominator = sums[:, :class_count], sums[:, class_count:]
            with np.errstate(divide="ignore", invalid="ignore"):
                f1 = np.where(denominator > 0, 2.0 * true_positive / denominator, 0.0)
            scores.append(f1[:, 1] if class_count == 2 else f1.mean(axis=1))
        return scores[0], scores[1]

    return evaluate


def _auc_evaluator(rows: np.ndarray) -> Evaluator:
    """Weighted ROC AUC (ties count one half), sorting each model's scores once for all resamples."""
    positive = rows[:, 0] > 0.5
    plans = []
    for column in (1, 2):
        order = np.argsort(rows[:, column], kind="stable")
        sorted_scores = rows[order, column]
        starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
        plans.append((order, positive[order], starts))

    def evaluate(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = []
        for order, is_positive, starts in plans:
            ordered = weights[:, order]
            positives = np.add.reduceat(np.where(is_positive, ordered, 0.0), starts, axis=1)
            negatives = np.add.reduceat(np.where(is_positive, 0.0, ordered), starts, axis=1)
            negatives_below = np.cumsum(negatives, axis=1) - negatives
            wins = (positives * (negatives_below + 0.5 * negatives)).sum(axis=1)
            pairs = positives.sum(axis=1) * negatives.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                scores.append(np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan))
        return scores[0], scores[1]

    return evaluate


def _finish_sums(totals: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    return totals[:, 0], totals[:, 1]


def _finish_means(totals: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    means = totals / rows
    return means[:, 0], means[:, 1]


def _finish_root_means(totals: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    # Squared errors are never negative; only the normal approximation can make a sum so.
    means = np.sqrt(np.maximum(totals / rows, 0.0))
    return means[:, 0], means[:, 1]


def _mean_linearized(rows: np.ndarray) -> Linearized:
    """Log loss and MAE: the means of the two value columns, binned by the per-row difference."""
    values = np.ascontiguousarray(rows[:, :2])
    return Linearized(values, values[:, 1] - values[:, 0], None, _finish_means, (1, 0), exact=True)


def _root_mean_linearized(rows: np.ndarray) -> Linearized:
    """RMSE: square roots of the mean squared errors, binned by the difference's influence values."""
    values = np.ascontiguousarray(rows[:, :2])
    roots = np.sqrt(values.mean(axis=0))
    scale = np.divide(0.5, roots, out=np.zeros(2), where=roots > 0)
    summary = values[:, 1] * scale[1] - values[:, 0] * scale[0]
    return Linearized(values, summary, None, _finish_root_means, (1, 0), exact=True)


def _placements(is_positive: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray]:
    """ROC AUC and each row's placement value minus it (positives: share of negatives beaten, ties one half)."""
    _, inverse = np.unique(scores, return_inverse=True)
    inverse = inverse.reshape(-1)
    positives = np.bincount(inverse[is_positive]).astype(np.float64)
    negatives = np.bincount(inverse[~is_positive], minlength=positives.shape[0]).astype(np.float64)
    positives = np.pad(positives, (0, negatives.shape[0] - positives.shape[0]))
    positive_total, negative_total = positives.sum(), negatives.sum()
    beaten = (np.cumsum(negatives) - 0.5 * negatives) / negative_total
    beating = (positive_total - np.cumsum(positives) + 0.5 * positives) / positive_total
    placement = np.where(is_positive, beaten[inverse], beating[inverse])
    auc = float(placement[is_positive].mean())
    return auc, placement - auc


def _auc_linearized(rows: np.ndarray) -> Linearized | None:
    """ROC AUC's first-order terms: class indicator and both models' placement values, per class."""
    is_positive = rows[:, 0] > 0.5
    positive_rows = int(np.count_nonzero(is_positive))
    if min(positive_rows, rows.shape[0] - positive_rows) < AUC_LINEAR_MIN_CLASS_ROWS:
        return None
    candidate_auc, candidate = _placements(is_positive, rows[:, 1])
    baseline_auc, baseline = _placements(is_positive, rows[:, 2])
    positive = is_positive.astype(np.float64)
    negative = 1.0 - positive
    values = np.column_stack(
        [positive, candidate * positive, baseline * positive, candidate * negative, baseline * negative]
    )
    # Within a class, the improvement's influence is the placement difference over the class share.
    share = np.where(is_positive, positive_rows, rows.shape[0] - positive_rows) / rows.shape[0]
    summary = (candidate - baseline) / share

    def finish(totals: np.ndarray, row_count: int) -> tuple[np.ndarray, np.ndarray]:
        positives = totals[:, 0]
        negatives = row_count - positives
        with np.errstate(divide="ignore", invalid="ignore"):
            first = candidate_auc + totals[:, 1] / positives + totals[:, 3] / negatives
            second = baseline_auc + totals[:, 2] / positives + totals[:, 4] / negatives
        return first, second

    def null() -> Linearized:
        return _auc_null(is_positive, rows[:, 1], rows[:, 2], positive_rows)

    return Linearized(values, summary, is_positive.astype(np.int64), finish, None, exact=False, null=null)


def _auc_null(is_positive: np.ndarray, candidate: np.ndarray, baseline: np.ndarray, positive_rows: int) -> Linearized:
    """First-order terms of the AUC difference when each row's two scores are swapped at random.

    A row kept as is adds its term, a swapped row subtracts it; the term is the
    row's placement difference (candidate score minus baseline score) against the
    pooled scores of both models on the other class, over that class's size.
    """
    pooled_labels = np.r_[is_positive, is_positive]
    _, pooled = _placements(pooled_labels, np.r_[candidate, baseline])
    rows = candidate.shape[0]
    class_rows = np.where(is_positive, positive_rows, rows - positive_rows)
    term = (pooled[:rows] - pooled[rows:]) / class_rows
    # Half the term in each column, the other half negated, so exchanging the columns negates the row's term;
    # the improvement (first minus second) is then the sum of +/- terms.
    values = np.column_stack([0.5 * term, -0.5 * term])
    return Linearized(values, term, None, _finish_sums, (1, 0), exact=False)
